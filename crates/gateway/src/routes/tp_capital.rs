//! TP-Capital: the parser over HTTP, the Telegram webhook, stored signals (list, get, delete into the archive,
//! CSV export), the bot and channel registries, and the ingestion log.

use super::{pagination, pagination_up_to, parse_time, query, QueryMap};
use crate::auth::{AsAdmin, AsTrader, Authorized, Principal, Role};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::views::List;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signal_parser::Signal;
use storage::{Bot, BotToken, Channel, SignalFilter};
use tp_capital::{Outcome, SignalView};

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
    Ok(Json(st.tp.handle(&update, "telegram-webhook").await?))
}

// ---- signals ----

fn signal_filter(q: &std::collections::HashMap<String, String>, max_limit: usize) -> ApiResult<SignalFilter> {
    let (limit, offset) = pagination_up_to(q, max_limit)?;
    let text = |k: &str| q.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    Ok(SignalFilter {
        channel_id: text("channel"),
        asset: text("asset"),
        signal_type: text("type"),
        search: text("search"),
        from: parse_time(q, "from")?,
        to: parse_time(q, "to")?,
        limit: limit as i64,
        offset: offset as i64,
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignalSchema {
    id: i64,
    channel_id: String,
    telegram_message_id: i64,
    /// telegram-polling, telegram-webhook or api.
    source: String,
    ts: DateTime<Utc>,
    ingested_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    asset: String,
    side: String,
    signal_type: String,
    buy_min: Option<f64>,
    buy_max: Option<f64>,
    target_1: Option<f64>,
    target_2: Option<f64>,
    target_final: Option<f64>,
    stop: Option<f64>,
    targets: Vec<f64>,
    raw_message: String,
    /// Only on `GET /tp-capital/signals/{id}`: the orders the signal opened when its channel auto-trades.
    bracket: Option<super::signals::BracketView>,
}

#[utoipa::path(get, path = "/api/v1/tp-capital/signals", tag = "tp-capital", summary = "Stored signals, newest first",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(("limit" = Option<usize>, Query, description = "1..1000, default 100"), ("offset" = Option<usize>, Query, description = "Default 0"),
           ("channel" = Option<String>, Query, description = "Telegram channel id"), ("asset" = Option<String>, Query, description = "Ticker"),
           ("type" = Option<String>, Query, description = "Swing Trade, Day Trade, Scalping, Position"),
           ("search" = Option<String>, Query, description = "Text in the message"),
           ("from" = Option<String>, Query, description = "RFC 3339"), ("to" = Option<String>, Query, description = "RFC 3339")),
    responses((status = 200, body = List<SignalSchema>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_signals(
    State(st): State<AppState>,
    principal: Principal,
    q: QueryMap,
) -> ApiResult<Json<List<SignalView>>> {
    principal.require(Role::Viewer)?;
    let f = signal_filter(&query(q)?, super::MAX_LIMIT)?;
    let (rows, total) = st.db.list_signals(&f).await?;
    Ok(Json(List { data: rows.into_iter().map(SignalView::from).collect(), total: total as u64 }))
}

fn signal_id(id: &str) -> ApiResult<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::invalid("id", "signal ids are positive integers"))
}

#[utoipa::path(get, path = "/api/v1/tp-capital/signals/{id}", tag = "tp-capital", summary = "One signal",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(("id" = i64, Path, description = "Signal id")),
    responses((status = 200, body = SignalSchema), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_signal(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<SignalWithOrders>> {
    principal.require(Role::Viewer)?;
    let id = signal_id(&id)?;
    let s = st.db.signal(id).await?.ok_or_else(|| ApiError::not_found(format!("signal {id} not found")))?;
    let bracket = st.trader.bracket_state(&format!("tp-{id}")).await.map(super::signals::BracketView::from);
    Ok(Json(SignalWithOrders { signal: s.into(), bracket }))
}

/// A signal and, when its channel auto-trades, the orders it opened.
#[derive(Serialize)]
pub struct SignalWithOrders {
    #[serde(flatten)]
    signal: SignalView,
    bracket: Option<super::signals::BracketView>,
}

#[utoipa::path(delete, path = "/api/v1/tp-capital/signals/{id}", tag = "tp-capital", summary = "Delete a signal (moved to the deleted archive, kept 90 days)",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])),
    params(("id" = i64, Path, description = "Signal id")),
    responses((status = 200, description = "The deleted signal", body = SignalSchema), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_signal(
    State(st): State<AppState>,
    Authorized(p): AsTrader,
    Path(id): Path<String>,
) -> ApiResult<Json<SignalView>> {
    let id = signal_id(&id)?;
    let s = st.db.delete_signal(id, &p.name).await?;
    tracing::info!(signal_id = id, by = %p.name, "signal deleted into the archive");
    Ok(Json(s.into()))
}

#[utoipa::path(get, path = "/api/v1/tp-capital/signals/export.csv", tag = "tp-capital",
    summary = "CSV export in the original layout (;-separated, pt-BR decimals, São Paulo time)",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(("limit" = Option<usize>, Query, description = "1..100000, default 100"), ("channel" = Option<String>, Query), ("asset" = Option<String>, Query),
           ("type" = Option<String>, Query), ("search" = Option<String>, Query), ("from" = Option<String>, Query), ("to" = Option<String>, Query)),
    responses((status = 200, description = "DATA;ATIVO;COMPRA_MIN;COMPRA_MAX;ALVO_1;ALVO_2;ALVO_FINAL;STOP", content_type = "text/csv"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn export_csv(State(st): State<AppState>, principal: Principal, q: QueryMap) -> ApiResult<Response> {
    principal.require(Role::Viewer)?;
    let f = signal_filter(&query(q)?, 100_000)?;
    let (rows, _) = st.db.list_signals(&f).await?;
    let body = tp_capital::csv::export(&rows);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"tp-capital-signals.csv\""),
        ],
        body,
    )
        .into_response())
}

// ---- channels ----

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    id: String,
    label: String,
    /// Telegram's id, e.g. -1001649127710.
    channel_id: String,
    /// source or destination.
    channel_type: String,
    description: String,
    /// active or inactive.
    status: String,
    /// Signals from this channel become orders (through the risk engine).
    auto_trade: bool,
    signal_count: i64,
    last_signal: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    label: String,
    channel_id: String,
    channel_type: String,
    #[serde(default)]
    description: String,
    #[serde(default = "active")]
    status: String,
    /// Off unless asked for.
    #[serde(default)]
    auto_trade: bool,
}

fn active() -> String {
    "active".into()
}

fn check_channel(b: &ChannelBody) -> ApiResult<()> {
    if b.label.trim().is_empty() || b.label.len() > 100 {
        return Err(ApiError::invalid("label", "label: 1 to 100 characters"));
    }
    let id = b.channel_id.trim();
    if id.is_empty() || !id.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) || id.len() > 20 {
        return Err(ApiError::invalid("channel_id", "channel_id: Telegram's numeric id, such as -1001649127710"));
    }
    if !matches!(b.channel_type.as_str(), "source" | "destination") {
        return Err(ApiError::invalid("channel_type", "channel_type: source or destination"));
    }
    if !matches!(b.status.as_str(), "active" | "inactive") {
        return Err(ApiError::invalid("status", "status: active or inactive"));
    }
    Ok(())
}

async fn channel_views(st: &AppState, channels: Vec<Channel>) -> ApiResult<Vec<ChannelView>> {
    let stats = st.db.channel_stats().await?;
    Ok(channels
        .into_iter()
        .map(|c| {
            let (count, last) =
                stats.iter().find(|(id, _, _)| *id == c.channel_id).map_or((0, None), |(_, n, l)| (*n, *l));
            ChannelView {
                id: c.id,
                label: c.label,
                channel_id: c.channel_id,
                channel_type: c.channel_type,
                description: c.description,
                status: c.status,
                auto_trade: c.auto_trade,
                signal_count: count,
                last_signal: last,
                created_at: c.created_at,
                updated_at: c.updated_at,
            }
        })
        .collect())
}

#[utoipa::path(get, path = "/api/v1/tp-capital/telegram/channels", tag = "tp-capital", summary = "Registered Telegram channels",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    responses((status = 200, body = List<ChannelView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_channels(State(st): State<AppState>, principal: Principal) -> ApiResult<Json<List<ChannelView>>> {
    principal.require(Role::Viewer)?;
    let data = channel_views(&st, st.db.list_channels().await?).await?;
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(post, path = "/api/v1/tp-capital/telegram/channels", tag = "tp-capital", summary = "Register a channel",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), request_body = ChannelBody,
    responses((status = 201, body = ChannelView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_channel(
    State(st): State<AppState>,
    Authorized(p): AsAdmin,
    JsonBody(b, _): JsonBody<ChannelBody>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    check_channel(&b)?;
    let now = Utc::now();
    let c = Channel {
        id: uuid::Uuid::now_v7().to_string(),
        label: b.label.trim().into(),
        channel_id: b.channel_id.trim().into(),
        channel_type: b.channel_type,
        description: b.description,
        status: b.status,
        auto_trade: b.auto_trade,
        created_at: now,
        updated_at: now,
    };
    let c = st.db.create_channel(&c).await?;
    tracing::info!(channel = %c.channel_id, by = %p.name, "channel registered");
    let mut v = channel_views(&st, vec![c]).await?;
    Ok((StatusCode::CREATED, Json(v.remove(0))))
}

#[utoipa::path(get, path = "/api/v1/tp-capital/telegram/channels/{id}", tag = "tp-capital", summary = "One channel",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("id" = String, Path)),
    responses((status = 200, body = ChannelView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_channel(
    State(st): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<ChannelView>> {
    principal.require(Role::Viewer)?;
    let c = st.db.channel(&id).await?.ok_or_else(|| ApiError::not_found(format!("channel {id} not found")))?;
    Ok(Json(channel_views(&st, vec![c]).await?.remove(0)))
}

#[utoipa::path(put, path = "/api/v1/tp-capital/telegram/channels/{id}", tag = "tp-capital", summary = "Change a channel",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path)), request_body = ChannelBody,
    responses((status = 200, body = ChannelView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_channel(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(id): Path<String>,
    JsonBody(b, _): JsonBody<ChannelBody>,
) -> ApiResult<Json<ChannelView>> {
    check_channel(&b)?;
    let old = st.db.channel(&id).await?.ok_or_else(|| ApiError::not_found(format!("channel {id} not found")))?;
    let c = Channel {
        label: b.label.trim().into(),
        channel_id: b.channel_id.trim().into(),
        channel_type: b.channel_type,
        description: b.description,
        status: b.status,
        auto_trade: b.auto_trade,
        updated_at: Utc::now(),
        ..old
    };
    let c = st.db.update_channel(&c).await?;
    Ok(Json(channel_views(&st, vec![c]).await?.remove(0)))
}

#[utoipa::path(delete, path = "/api/v1/tp-capital/telegram/channels/{id}", tag = "tp-capital", summary = "Remove a channel (its signals stay)",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_channel(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.db.delete_channel(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- bots ----

#[derive(Serialize, utoipa::ToSchema)]
pub struct BotView {
    id: String,
    username: String,
    /// Never the whole token: the bot id and the last four characters.
    token_hint: String,
    /// sender, forwarder, ingestion or monitor.
    bot_type: String,
    description: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Bot> for BotView {
    fn from(b: Bot) -> Self {
        BotView {
            id: b.id,
            username: b.username,
            token_hint: b.token_hint,
            bot_type: b.bot_type,
            description: b.description,
            status: b.status,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BotBody {
    username: String,
    /// Required on create; on update, leave it out to keep the stored one.
    token: Option<String>,
    bot_type: String,
    #[serde(default)]
    description: String,
    #[serde(default = "active")]
    status: String,
}

fn check_bot(b: &BotBody, creating: bool) -> ApiResult<()> {
    let u = b.username.trim().trim_start_matches('@');
    if u.len() < 3 || u.len() > 64 || !u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ApiError::invalid("username", "username: 3 to 64 letters, digits or _"));
    }
    match &b.token {
        None if creating => return Err(ApiError::invalid("token", "token is required")),
        Some(t)
            if !t
                .split_once(':')
                .is_some_and(|(id, s)| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) && s.len() >= 20) =>
        {
            return Err(ApiError::invalid("token", "token: the bot token BotFather gave, like 123456789:AA..."));
        }
        _ => {}
    }
    if !matches!(b.bot_type.as_str(), "sender" | "forwarder" | "ingestion" | "monitor") {
        return Err(ApiError::invalid("bot_type", "bot_type: sender, forwarder, ingestion or monitor"));
    }
    if !matches!(b.status.as_str(), "active" | "inactive") {
        return Err(ApiError::invalid("status", "status: active or inactive"));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/tp-capital/telegram/bots", tag = "tp-capital", summary = "Registered bots (tokens masked)",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = List<BotView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_bots(State(st): State<AppState>, Authorized(_): AsAdmin) -> ApiResult<Json<List<BotView>>> {
    let data: Vec<BotView> = st.db.list_bots().await?.into_iter().map(BotView::from).collect();
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(post, path = "/api/v1/tp-capital/telegram/bots", tag = "tp-capital", summary = "Register a bot",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), request_body = BotBody,
    responses((status = 201, body = BotView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_bot(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    JsonBody(b, _): JsonBody<BotBody>,
) -> ApiResult<(StatusCode, Json<BotView>)> {
    check_bot(&b, true)?;
    let token = BotToken::new(b.token.as_deref().unwrap_or_default());
    let now = Utc::now();
    let bot = Bot {
        id: uuid::Uuid::now_v7().to_string(),
        username: b.username.trim().trim_start_matches('@').into(),
        token_sha256: token.sha256,
        token_hint: token.hint,
        bot_type: b.bot_type,
        description: b.description,
        status: b.status,
        created_at: now,
        updated_at: now,
    };
    Ok((StatusCode::CREATED, Json(st.db.create_bot(&bot).await?.into())))
}

#[utoipa::path(get, path = "/api/v1/tp-capital/telegram/bots/{id}", tag = "tp-capital", summary = "One bot (token masked)",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path)),
    responses((status = 200, body = BotView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_bot(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<Json<BotView>> {
    let b = st.db.bot(&id).await?.ok_or_else(|| ApiError::not_found(format!("bot {id} not found")))?;
    Ok(Json(b.into()))
}

#[utoipa::path(put, path = "/api/v1/tp-capital/telegram/bots/{id}", tag = "tp-capital", summary = "Change a bot",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path)), request_body = BotBody,
    responses((status = 200, body = BotView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_bot(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(id): Path<String>,
    JsonBody(b, _): JsonBody<BotBody>,
) -> ApiResult<Json<BotView>> {
    check_bot(&b, false)?;
    let old = st.db.bot(&id).await?.ok_or_else(|| ApiError::not_found(format!("bot {id} not found")))?;
    let token = b.token.as_deref().map(BotToken::new);
    let bot = Bot {
        username: b.username.trim().trim_start_matches('@').into(),
        token_sha256: token.as_ref().map_or(old.token_sha256.clone(), |t| t.sha256.clone()),
        token_hint: token.map_or(old.token_hint.clone(), |t| t.hint),
        bot_type: b.bot_type,
        description: b.description,
        status: b.status,
        updated_at: Utc::now(),
        ..old
    };
    Ok(Json(st.db.update_bot(&bot).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/tp-capital/telegram/bots/{id}", tag = "tp-capital", summary = "Remove a bot",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_bot(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.db.delete_bot(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- logs ----

#[derive(Serialize, utoipa::ToSchema)]
pub struct LogView {
    id: i64,
    ts: DateTime<Utc>,
    level: String,
    channel_id: Option<String>,
    message_id: Option<i64>,
    /// parsed, updated, duplicate, ignored, unregistered, failed, poll_error.
    outcome: String,
    message: String,
}

#[utoipa::path(get, path = "/api/v1/tp-capital/logs", tag = "tp-capital", summary = "The newest ingestion log entries",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(("level" = Option<String>, Query, description = "debug, info, warn or error"), ("limit" = Option<usize>, Query, description = "1..1000, default 100")),
    responses((status = 200, body = List<LogView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn logs(State(st): State<AppState>, principal: Principal, q: QueryMap) -> ApiResult<Json<List<LogView>>> {
    principal.require(Role::Viewer)?;
    let q = query(q)?;
    let (limit, _) = pagination(&q)?;
    let level = q.get("level").map(String::as_str);
    if let Some(l) = level {
        if !matches!(l, "debug" | "info" | "warn" | "error") {
            return Err(ApiError::invalid("level", "level: debug, info, warn or error"));
        }
    }
    let data: Vec<LogView> = st
        .db
        .ingest_log(level, limit as i64)
        .await?
        .into_iter()
        .map(|e| LogView {
            id: e.id,
            ts: e.ts,
            level: e.level,
            channel_id: e.channel_id,
            message_id: e.message_id,
            outcome: e.outcome,
            message: e.message,
        })
        .collect();
    Ok(Json(List { total: data.len() as u64, data }))
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
