//! The OpenAPI 3 document, generated from the handlers' annotations and the types they take and return.
//!
//! Each operation's security requirement names the least role that may call it as the scope of both schemes
//! (`bearer` and `api_key`); `security: [{}]` marks a public one. The route-by-route authorization test reads
//! those scopes, and another test fails when the router has a route this document lacks.

use crate::routes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "TradingSystem API",
        description = "The API of TradingSystem, an algorithmic-trading backend for B3: orders, risk, positions, \
                       audit, market data. Errors are `{\"error\": {\"code\", \"message\", \"details\"}, \
                       \"correlation_id\"}`. Calls are rate limited per API key, user or IP (429 with Retry-After \
                       and RateLimit-* headers).",
        license(name = "MIT")
    ),
    paths(
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::list_users,
        routes::auth::create_user,
        routes::auth::update_user,
        routes::auth::list_api_keys,
        routes::auth::create_api_key,
        routes::auth::revoke_api_key,
        routes::orders::create,
        routes::orders::list,
        routes::orders::get_one,
        routes::orders::cancel,
        execute,
        routes::risk::positions,
        routes::risk::get_limits,
        routes::risk::put_limits,
        routes::risk::status,
        routes::risk::activate_kill_switch,
        routes::risk::release_kill_switch,
        routes::audit::list,
        routes::market::instruments,
        routes::market::trades,
        routes::market::quote,
        routes::market::book,
        routes::market::candles,
        routes::market::status,
        routes::signals::create,
        routes::docs::search,
        routes::docs::facets,
        routes::docs::document,
        routes::docs::reindex,
        routes::systems::list_systems,
        routes::systems::create_system,
        routes::systems::get_system,
        routes::systems::update_system,
        routes::systems::delete_system,
        routes::systems::check_system_now,
        routes::ideas::list,
        routes::ideas::stats,
        routes::ideas::create,
        routes::ideas::get_one,
        routes::ideas::update,
        routes::ideas::transition,
        routes::ideas::delete,
        routes::ideas::audit,
        routes::ideas::list_categories,
        routes::ideas::create_category,
        routes::ideas::get_category,
        routes::ideas::update_category,
        routes::ideas::delete_category,
        routes::signals::list,
        routes::tp_capital::parse,
        routes::tp_capital::webhook,
        routes::tp_capital::list_signals,
        routes::tp_capital::export_csv,
        routes::tp_capital::get_signal,
        routes::tp_capital::delete_signal,
        routes::tp_capital::list_channels,
        routes::tp_capital::create_channel,
        routes::tp_capital::get_channel,
        routes::tp_capital::update_channel,
        routes::tp_capital::delete_channel,
        routes::tp_capital::list_bots,
        routes::tp_capital::create_bot,
        routes::tp_capital::get_bot,
        routes::tp_capital::update_bot,
        routes::tp_capital::delete_bot,
        routes::tp_capital::logs,
        routes::ops::health,
        routes::ops::ready,
        routes::ops::healthz,
        routes::ops::metrics,
        routes::ws::upgrade,
        openapi_json,
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Login, tokens, users and API keys"),
        (name = "orders", description = "The Order Manager: submit, list, cancel"),
        (name = "positions", description = "Positions and P&L"),
        (name = "risk", description = "Limits, risk status and the kill switch"),
        (name = "audit", description = "The audit trail of every order and risk decision"),
        (name = "market", description = "Data Capture: instruments, trades, quotes, book, candles, feed status"),
        (name = "signals", description = "Strategy/ML signals into orders"),
        (name = "ideas", description = "The Idea Bank: ideas, their workflow, categories"),
        (name = "docs", description = "The Documentation API: search, documents, the systems registry"),
        (name = "tp-capital", description = "TP-Capital: Telegram trading signals"),
        (name = "streaming", description = "The WebSocket"),
        (name = "ops", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("From POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "Created by an admin; shown once",
            ))),
        );
    }
}

/// `POST /api/v1/execute` is the original system's name for `POST /api/v1/orders`; same handler, same contract.
#[utoipa::path(post, path = "/api/v1/execute", tag = "orders", summary = "Same as POST /api/v1/orders (the original system's name)",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])),
    request_body = routes::orders::OrderBody,
    responses((status = 201, body = crate::views::OrderView), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
#[allow(dead_code)]
fn execute() {}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| ApiDoc::openapi().to_json().unwrap_or_else(|_| "{}".into()));

/// The document itself.
#[utoipa::path(get, path = "/openapi.json", tag = "ops", summary = "This OpenAPI document", security(()),
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `.route(...)` of the router, read from its source: (METHOD, full path).
    fn routes_in_router() -> BTreeSet<(String, String)> {
        let src = include_str!("lib.rs");
        let start = src.find("pub fn router(").expect("router fn");
        let body = &src[start..];
        let api_end = body.find(".fallback(").expect("the API router ends with a fallback");
        let mut found = BTreeSet::new();
        for (i, _) in body.match_indices(".route(") {
            // The call's arguments, up to its closing parenthesis (rustfmt may spread them over lines).
            let args_start = i + ".route(".len();
            let mut depth = 1;
            let mut end = args_start;
            for (j, c) in body[args_start..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = args_start + j;
                    break;
                }
            }
            let args = body[args_start..end].trim_start();
            let path = args.strip_prefix('"').and_then(|a| a.split('"').next()).expect("a literal path");
            // axum's catch-all `{*name}` is OpenAPI's `{name}`.
            let documented_path = path.replace("{*", "{");
            let handlers = &args[path.len() + 2..];
            let prefix = if i < api_end { "/api/v1" } else { "" };
            for m in ["get", "post", "put", "delete", "patch"] {
                let called = handlers.match_indices(&format!("{m}(")).any(|(k, _)| {
                    k == 0 || !handlers.as_bytes()[k - 1].is_ascii_alphanumeric() && handlers.as_bytes()[k - 1] != b'_'
                });
                if called {
                    found.insert((m.to_uppercase(), format!("{prefix}{documented_path}")));
                }
            }
        }
        found
    }

    fn documented() -> (BTreeSet<(String, String)>, serde_json::Value) {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).expect("the document is JSON");
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("path item") {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
        (ops, doc)
    }

    #[test]
    fn every_route_of_the_router_is_documented() {
        let routes = routes_in_router();
        assert!(routes.len() >= 30, "the scan found the routes: {routes:?}");
        let (ops, _) = documented();
        let missing: Vec<_> = routes.difference(&ops).collect();
        assert!(missing.is_empty(), "routes missing from /openapi.json: {missing:?}");
        let stale: Vec<_> = ops.difference(&routes).collect();
        assert!(stale.is_empty(), "documented operations the router does not serve: {stale:?}");
    }

    #[test]
    fn every_operation_says_who_may_call_it_and_every_schema_resolves() {
        let (_, doc) = documented();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let security = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
                assert!(!security.is_empty(), "{method} {path}");
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}: no responses");
            }
        }
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for m in text.match_indices("#/components/schemas/") {
            let name: String = text[m.0 + m.1.len()..].chars().take_while(|c| *c != '"').collect();
            assert!(schemas.contains_key(&name), "dangling schema reference {name}");
        }
        for s in ["OrderView", "OrderBody", "ErrorBody", "Trade", "BookSnapshot", "RiskLimits", "FeedStatus"] {
            assert!(schemas.contains_key(s), "schema {s}");
        }
    }
}
