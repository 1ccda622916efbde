//! The API Gateway: one HTTP API for every service, with authentication, roles, the error contract,
//! correlation ids and metrics. Handlers are thin: they parse, authorize, call a service, and render.

pub mod auth;
pub mod body;
pub mod error;
mod middleware;
pub mod openapi;
pub mod protect;
pub mod routes;
pub mod systems;
pub mod telemetry;
pub mod views;
mod web;

use auth::JwtKeys;
use axum::routing::{delete, get, patch, post};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use order_manager::OrderManager;
use std::sync::Arc;
use std::time::Instant;
use storage::Db;

/// Everything a handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub oms: OrderManager,
    pub db: Db,
    pub jwt: Arc<JwtKeys>,
    pub metrics: Option<PrometheusHandle>,
    pub market_data: data_capture::DataCapture,
    pub bus: bus::Bus,
    pub started: Instant,
    pub protection: Arc<protect::ProtectionConfig>,
    pub tp: tp_capital::Ingestor,
    /// Turns signals into brackets of orders.
    pub trader: Arc<signal_trading::Trader>,
    /// The Documentation API's search index.
    pub docs: Arc<docs_index::DocsIndex>,
    /// Strategy/ML signals below this confidence are recorded, not traded.
    pub min_signal_confidence: f64,
    /// `TS_TELEGRAM_WEBHOOK_SECRET`; without it the webhook answers 401 to everyone.
    pub telegram_webhook_secret: Option<String>,
    pub rate_limits: Arc<protect::RateLimits>,
    /// Who users and API keys are now (role, disabled, revoked), read through a short cache.
    pub auth_cache: Arc<auth::AuthCache>,
}

pub use systems::probe_all as probe_systems;

/// Default request body limit (413 above it).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(routes::auth::login))
        .route("/auth/refresh", post(routes::auth::refresh))
        .route("/users", get(routes::auth::list_users).post(routes::auth::create_user))
        .route("/users/{id}", patch(routes::auth::update_user))
        .route("/api-keys", get(routes::auth::list_api_keys).post(routes::auth::create_api_key))
        .route("/api-keys/{id}", delete(routes::auth::revoke_api_key))
        .route("/orders", post(routes::orders::create).get(routes::orders::list))
        .route("/execute", post(routes::orders::create))
        .route("/orders/{id}", get(routes::orders::get_one).delete(routes::orders::cancel))
        .route("/positions", get(routes::risk::positions))
        .route("/risk/limits", get(routes::risk::get_limits).put(routes::risk::put_limits))
        .route("/risk/status", get(routes::risk::status))
        .route("/risk/kill-switch", post(routes::risk::activate_kill_switch).delete(routes::risk::release_kill_switch))
        .route("/audit", get(routes::audit::list))
        .route("/market/instruments", get(routes::market::instruments))
        .route("/market/trades", get(routes::market::trades))
        .route("/market/quote", get(routes::market::quote))
        .route("/market/book", get(routes::market::book))
        .route("/market/candles", get(routes::market::candles))
        .route("/market/status", get(routes::market::status))
        .route("/signals", get(routes::signals::list).post(routes::signals::create))
        .route("/ideas", get(routes::ideas::list).post(routes::ideas::create))
        .route("/ideas/stats", get(routes::ideas::stats))
        .route("/ideas/{id}", get(routes::ideas::get_one).put(routes::ideas::update).delete(routes::ideas::delete))
        .route("/ideas/{id}/transition", post(routes::ideas::transition))
        .route("/ideas/{id}/audit", get(routes::ideas::audit))
        .route("/docs/search", get(routes::docs::search))
        .route("/docs/facets", get(routes::docs::facets))
        .route("/docs/documents/{*path}", get(routes::docs::document))
        .route("/docs/reindex", post(routes::docs::reindex))
        .route("/systems", get(routes::systems::list_systems).post(routes::systems::create_system))
        .route(
            "/systems/{id}",
            get(routes::systems::get_system).put(routes::systems::update_system).delete(routes::systems::delete_system),
        )
        .route("/systems/{id}/check", post(routes::systems::check_system_now))
        .route("/categories", get(routes::ideas::list_categories).post(routes::ideas::create_category))
        .route(
            "/categories/{name}",
            get(routes::ideas::get_category).put(routes::ideas::update_category).delete(routes::ideas::delete_category),
        )
        .route("/tp-capital/parse", post(routes::tp_capital::parse))
        .route("/tp-capital/telegram/webhook", post(routes::tp_capital::webhook))
        .route("/tp-capital/signals", get(routes::tp_capital::list_signals))
        .route("/tp-capital/signals/export.csv", get(routes::tp_capital::export_csv))
        .route(
            "/tp-capital/signals/{id}",
            get(routes::tp_capital::get_signal).delete(routes::tp_capital::delete_signal),
        )
        .route(
            "/tp-capital/telegram/channels",
            get(routes::tp_capital::list_channels).post(routes::tp_capital::create_channel),
        )
        .route(
            "/tp-capital/telegram/channels/{id}",
            get(routes::tp_capital::get_channel)
                .put(routes::tp_capital::update_channel)
                .delete(routes::tp_capital::delete_channel),
        )
        .route("/tp-capital/telegram/bots", get(routes::tp_capital::list_bots).post(routes::tp_capital::create_bot))
        .route(
            "/tp-capital/telegram/bots/{id}",
            get(routes::tp_capital::get_bot).put(routes::tp_capital::update_bot).delete(routes::tp_capital::delete_bot),
        )
        .route("/tp-capital/logs", get(routes::tp_capital::logs))
        .fallback(routes::ops::not_found);
    let protection = state.protection.clone();
    let app = Router::new()
        .nest("/api/v1", api)
        .route("/health", get(routes::ops::health))
        .route("/ready", get(routes::ops::ready))
        .route("/healthz", get(routes::ops::healthz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/ws", get(routes::ws::upgrade))
        .merge(web::router())
        .fallback(routes::ops::not_found)
        .layer(axum::middleware::from_fn(body::guard))
        .layer(axum::extract::DefaultBodyLimit::max(protection.body_limit))
        .layer(axum::middleware::from_fn_with_state(protection.request_timeout, protect::timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), protect::rate_limit));
    // Outermost last: panics become JSON 500s, every response (429s included) gets a correlation id, metrics and
    // the security headers, and CORS preflights are answered before anything counts against a limit.
    let app = match protect::cors(&protection) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.layer(axum::middleware::from_fn(protect::security_headers))
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(middleware::panic_response))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
