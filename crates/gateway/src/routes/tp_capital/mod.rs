//! TP-Capital over HTTP, one module per resource: the parser and the Telegram webhook here; stored signals (list,
//! get, delete into the archive, CSV export) in `signals`, the registries in `channels` and `bots`, the ingestion
//! log in `logs`.

pub mod bots;
pub mod channels;
pub mod logs;
pub mod signals;

use crate::auth::{AsViewer, Authorized};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use signal_parser::Signal;
use tp_capital::Outcome;

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
pub async fn parse(Authorized(_): AsViewer, JsonBody(b, _): JsonBody<ParseBody>) -> ApiResult<Json<Option<Signal>>> {
    if b.text.len() > MAX_MESSAGE {
        return Err(ApiError::invalid("text", format!("text: at most {MAX_MESSAGE} bytes")));
    }
    let started = std::time::Instant::now();
    let parsed = signal_parser::parse(&b.text);
    metrics::histogram!("ts_signal_parse_seconds").record(started.elapsed().as_secs_f64());
    Ok(Json(parsed))
}

// ---- webhook ----

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /api/v1/tp-capital/telegram/webhook`: Telegram's push. 401 unless `X-Telegram-Bot-Api-Secret-Token`
/// equals `TS_TELEGRAM_WEBHOOK_SECRET` (so with no secret configured, the webhook is closed). Answers 200 once the
/// update is handled (Telegram retries anything else); 503 when it could not be stored, so Telegram retries.
#[utoipa::path(post, path = "/api/v1/tp-capital/telegram/webhook", tag = "tp-capital",
    summary = "Telegram webhook (checks its own secret header)",
    security(()),
    params(("X-Telegram-Bot-Api-Secret-Token" = String, Header, description = "Must equal TS_TELEGRAM_WEBHOOK_SECRET")),
    request_body(content = Object, description = "A Telegram Update"),
    responses((status = 200, description = "Handled: {\"outcome\": parsed|updated|duplicate|ignored|unregistered, ...}"),
              (status = 400, description = "Not a Telegram Update", body = ErrorBody),
              (status = 401, description = "Missing or wrong secret token", body = ErrorBody),
              (status = 503, description = "Could not be stored; Telegram will retry", body = ErrorBody)))]
pub async fn webhook(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Outcome>> {
    let given = headers.get("x-telegram-bot-api-secret-token").map(|v| v.as_bytes());
    let ok = match (&st.telegram_webhook_secret, given) {
        (Some(secret), Some(given)) => constant_time_eq(secret.as_bytes(), given),
        _ => false,
    };
    if !ok {
        return Err(ApiError::unauthorized("missing or wrong X-Telegram-Bot-Api-Secret-Token"));
    }
    let update: tp_capital::telegram::Update =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("not a Telegram Update: {e}")))?;
    Ok(Json(st.tp.handle(&update, storage::SignalSource::TelegramWebhook).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_masked() {
        assert_eq!(storage::token_hint("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"), "123456789:…Dsaw");
        assert_eq!(storage::token_hint("short"), ":…");
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"a", b"ab")
        );
    }
}
