//! The registry of Telegram channels whose messages are signals.

use crate::auth::{AsAdmin, AsViewer, Authorized};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::views::List;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use storage::{Activity, Channel, ChannelType};

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChannelView {
    id: String,
    label: String,
    /// Telegram's id, e.g. -1001649127710.
    channel_id: String,
    channel_type: ChannelType,
    description: String,
    status: Activity,
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
    channel_type: ChannelType,
    #[serde(default)]
    description: String,
    #[serde(default = "active")]
    status: Activity,
    /// Off unless asked for.
    #[serde(default)]
    auto_trade: bool,
}

pub(super) fn active() -> Activity {
    Activity::Active
}

fn check_channel(b: &ChannelBody) -> ApiResult<()> {
    if b.label.trim().is_empty() || b.label.len() > 100 {
        return Err(ApiError::invalid("label", "label: 1 to 100 characters"));
    }
    let id = b.channel_id.trim();
    if id.is_empty() || !id.trim_start_matches('-').chars().all(|c| c.is_ascii_digit()) || id.len() > 20 {
        return Err(ApiError::invalid("channel_id", "channel_id: Telegram's numeric id, such as -1001649127710"));
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
pub async fn list_channels(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<List<ChannelView>>> {
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
    Authorized(_): AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<ChannelView>> {
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
