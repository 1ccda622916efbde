//! The API Gateway: one HTTP API for every service, with authentication, roles, the error contract,
//! correlation ids and metrics. Handlers are thin: they parse, authorize, call a service, and render.

pub mod auth;
pub mod body;
pub mod error;
mod middleware;
pub mod openapi;
pub mod protect;
pub mod query;
pub mod routes;
pub mod systems;
pub mod telemetry;
pub mod views;
mod web;

use auth::JwtKeys;
use axum::routing::get;
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
    /// Backtest jobs on the recorded market data.
    pub backtests: backtest::jobs::Jobs,
    /// The live strategies.
    pub strategies: strategy::live::LiveStrategies,
    /// The broker connections orders route to (by account).
    pub brokers: Arc<Vec<routes::brokers::BrokerEntry>>,
}

pub use systems::probe_all as probe_systems;

/// Default request body limit (413 above it).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The routes and the OpenAPI document, built from one list: `routes!` takes each handler's `#[utoipa::path]`
/// (method and path) both to route it and to document it, so a route exists exactly when its operation is
/// documented. The one hand-made route is the document reader, whose path holds slashes (axum's catch-all
/// `{*path}`, OpenAPI's `{path}`).
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::*;
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::list_users, auth::create_user))
        .routes(routes!(auth::update_user))
        .routes(routes!(auth::list_api_keys, auth::create_api_key))
        .routes(routes!(auth::revoke_api_key))
        .routes(routes!(orders::create, orders::list))
        .routes(routes!(orders::execute))
        .routes(routes!(orders::get_one, orders::cancel, orders::modify))
        .routes(routes!(brokers::list))
        .routes(routes!(brokers::reset_sequence))
        .routes(routes!(risk::positions))
        .routes(routes!(risk::get_limits, risk::put_limits))
        .routes(routes!(risk::status))
        .routes(routes!(risk::activate_kill_switch, risk::release_kill_switch))
        .routes(routes!(audit::list))
        .routes(routes!(backtests::create, backtests::list))
        .routes(routes!(backtests::strategies))
        .routes(routes!(backtests::get_one, backtests::delete))
        .routes(routes!(backtests::file))
        .routes(routes!(strategies::list, strategies::create))
        .routes(routes!(strategies::get_one))
        .routes(routes!(strategies::start))
        .routes(routes!(strategies::stop))
        .routes(routes!(market::instruments))
        .routes(routes!(market::trades))
        .routes(routes!(market::quote))
        .routes(routes!(market::book))
        .routes(routes!(market::candles))
        .routes(routes!(market::status))
        .routes(routes!(signals::list, signals::create))
        .routes(routes!(ideas::list, ideas::create))
        .routes(routes!(ideas::stats))
        .routes(routes!(ideas::get_one, ideas::update, ideas::delete))
        .routes(routes!(ideas::transition))
        .routes(routes!(ideas::audit))
        .routes(routes!(ideas::list_categories, ideas::create_category))
        .routes(routes!(ideas::get_category, ideas::update_category, ideas::delete_category))
        .routes(routes!(docs::search))
        .routes(routes!(docs::facets))
        .routes(routes!(docs::reindex))
        .routes(routes!(systems::list_systems, systems::create_system))
        .routes(routes!(systems::get_system, systems::update_system, systems::delete_system))
        .routes(routes!(systems::check_system_now))
        .routes(routes!(tp_capital::parse))
        .routes(routes!(tp_capital::webhook))
        .routes(routes!(tp_capital::signals::list_signals))
        .routes(routes!(tp_capital::signals::export_csv))
        .routes(routes!(tp_capital::signals::get_signal, tp_capital::signals::delete_signal))
        .routes(routes!(tp_capital::channels::list_channels, tp_capital::channels::create_channel))
        .routes(routes!(
            tp_capital::channels::get_channel,
            tp_capital::channels::update_channel,
            tp_capital::channels::delete_channel
        ))
        .routes(routes!(tp_capital::bots::list_bots, tp_capital::bots::create_bot))
        .routes(routes!(tp_capital::bots::get_bot, tp_capital::bots::update_bot, tp_capital::bots::delete_bot))
        .routes(routes!(tp_capital::logs::logs))
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(ws::upgrade))
        .split_for_parts();
    doc.merge(openapi::DocumentReader::openapi());
    let router = router.route("/api/v1/docs/documents/{*path}", get(routes::docs::document));
    (router, doc)
}

pub fn router(state: AppState) -> Router {
    let (app, _) = api();
    let protection = state.protection.clone();
    let app = app
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
