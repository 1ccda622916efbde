//! The registry of Telegram bots (tokens stored as a fingerprint and a hint).

use super::channels::active;
use crate::auth::{AsAdmin, Authorized};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::views::List;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use storage::{Activity, Bot, BotToken, BotType};

#[derive(Serialize, utoipa::ToSchema)]
pub struct BotView {
    id: String,
    username: String,
    /// Never the whole token: the bot id and the last four characters.
    token_hint: String,
    bot_type: BotType,
    description: String,
    status: Activity,
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
    bot_type: BotType,
    #[serde(default)]
    description: String,
    #[serde(default = "active")]
    status: Activity,
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
