//! TP-Capital: the signal parser over HTTP.

use crate::auth::{Principal, Role};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use axum::Json;
use serde::Deserialize;
use signal_parser::Signal;

/// Longer than any Telegram message (4,096 characters, captions 1,024) with room to spare.
const MAX_MESSAGE: usize = 16 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParseBody {
    /// The message as posted (text or caption).
    text: String,
}

/// `POST /api/v1/tp-capital/parse`: the parse of a message, or `null` when it is not a signal.
#[utoipa::path(post, path = "/api/v1/tp-capital/parse", tag = "tp-capital",
    summary = "Parse a signal message (null when it is not a signal)",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    request_body = ParseBody,
    responses((status = 200, description = "The parse, or null", body = Option<Signal>),
              (status = 401, description = "No or invalid credentials", body = ErrorBody),
              (status = 403, description = "The role may not do this", body = ErrorBody),
              (status = 422, description = "No text, or longer than 16 KiB", body = ErrorBody),
              (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn parse(principal: Principal, JsonBody(b, _): JsonBody<ParseBody>) -> ApiResult<Json<Option<Signal>>> {
    principal.require(Role::Viewer)?;
    if b.text.len() > MAX_MESSAGE {
        return Err(ApiError::invalid("text", format!("text: at most {MAX_MESSAGE} bytes")));
    }
    let started = std::time::Instant::now();
    let parsed = signal_parser::parse(&b.text);
    metrics::histogram!("ts_signal_parse_seconds").record(started.elapsed().as_secs_f64());
    Ok(Json(parsed))
}
