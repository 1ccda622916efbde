//! The OpenAPI 3 document, generated from the handlers' annotations and the types they take and return.
//!
//! The operations come from the router itself ([`crate::api`] registers each handler with `routes!`, which reads
//! its `#[utoipa::path]`), so the router and this document cannot disagree. Each operation's security requirement
//! names the least role that may call it as the scope of both schemes (`bearer` and `api_key`); `security: [{}]`
//! marks a public one. The route-by-route authorization test reads those scopes.

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
    modifiers(&Security),
    tags(
        (name = "auth", description = "Login, tokens, users and API keys"),
        (name = "orders", description = "The Order Manager: submit, list, cancel"),
        (name = "positions", description = "Positions and P&L"),
        (name = "risk", description = "Limits, risk status and the kill switch"),
        (name = "audit", description = "The audit trail of every order and risk decision"),
        (name = "strategies", description = "Live strategies: configured instances, start, stop, status"),
        (name = "backtests", description = "Backtests of strategies on the recorded market data: jobs, progress, reports"),
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

/// The document reader's operation: its route is added by hand (see [`crate::api`]), its documentation here.
#[derive(OpenApi)]
#[openapi(paths(routes::docs::document))]
pub struct DocumentReader;

static DOCUMENT: LazyLock<String> = LazyLock::new(|| crate::api().1.to_json().unwrap_or_else(|_| "{}".into()));

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
    fn the_document_lists_every_route_once() {
        let (ops, _) = documented();
        assert!(ops.len() >= 60, "{ops:?}");
        for op in [("GET", "/api/v1/docs/documents/{path}"), ("POST", "/api/v1/execute"), ("GET", "/ws")] {
            assert!(ops.contains(&(op.0.to_string(), op.1.to_string())), "{op:?}");
        }
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
