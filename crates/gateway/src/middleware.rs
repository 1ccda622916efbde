//! Request middleware: correlation ids, the request span, HTTP metrics, and turning panics into JSON 500s.

use crate::error::{ApiError, CORRELATION_ID};
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tracing::Instrument;

const HEADER: &str = "x-correlation-id";

fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let correlation_id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let span = tracing::info_span!("request", correlation_id = %correlation_id, method = %method, route = %route);
    let mut response = CORRELATION_ID.scope(correlation_id.clone(), next.run(req).instrument(span.clone())).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed().as_secs_f64();
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, elapsed_ms = elapsed * 1e3, "request failed");
        } else {
            tracing::debug!(status, elapsed_ms = elapsed * 1e3, "request served");
        }
    });
    metrics::counter!("ts_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("ts_http_request_duration_seconds", "route" => route, "method" => method).record(elapsed);
    if let Ok(v) = HeaderValue::from_str(&correlation_id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %detail, "handler panicked");
    ApiError::internal("internal error; it has been logged").into_response()
}
