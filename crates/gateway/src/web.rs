//! The web dashboard and the API reference page: static files compiled into the binary (nothing is fetched from
//! a CDN, at build or at run time). Public, like the spec says; the data behind them needs a login.

use crate::AppState;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../web/app.js") },
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", body: include_bytes!("../web/app.css") },
    Asset {
        name: "reference.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/reference.js"),
    },
    Asset {
        name: "reference.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/reference.css"),
    },
    // TradingView Lightweight Charts 4.2.3 (Apache-2.0), vendored from npm; its license is in web/vendor.
    Asset {
        name: "lightweight-charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/vendor/lightweight-charts-4.2.3.js"),
    },
    Asset {
        name: "LICENSE-lightweight-charts.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../web/vendor/LICENSE-lightweight-charts"),
    },
];

fn page(html: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], html).into_response()
}

async fn index() -> Response {
    page(include_str!("../web/index.html"))
}

async fn reference() -> Response {
    page(include_str!("../web/reference.html"))
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        // Revalidated each time: assets change with the binary and are small next to what the page streams.
        Some(a) => {
            ([(header::CONTENT_TYPE, a.content_type), (header::CACHE_CONTROL, "no-cache")], a.body).into_response()
        }
        None => crate::error::ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("no asset {name:?}"))
            .into_response(),
    }
}

/// `/`, `/api-docs` and `/assets/{name}`. Kept apart from the API router: these are files, not operations, so
/// they are not in the OpenAPI document.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/api-docs", get(reference)).route("/assets/{name}", get(asset))
}
