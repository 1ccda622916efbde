//! The systems registry: the desk's other systems (name, URL, owner) and their health, probed by
//! [`crate::systems`].

use crate::auth::{AsAdmin, AsTrader, AsViewer, Authorized};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::views::List;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use storage::{SystemRow, SystemStatus, SystemType};

#[derive(Serialize, utoipa::ToSchema)]
pub struct SystemView {
    id: String,
    name: String,
    #[serde(rename = "type")]
    system_type: SystemType,
    url: String,
    owner: String,
    tags: Vec<String>,
    /// From the last health probe.
    status: SystemStatus,
    last_check: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<SystemRow> for SystemView {
    fn from(s: SystemRow) -> Self {
        SystemView {
            id: s.id,
            name: s.name,
            system_type: s.system_type,
            url: s.url,
            owner: s.owner,
            tags: s.tags,
            status: s.status,
            last_check: s.last_check,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemBody {
    name: String,
    #[serde(rename = "type")]
    system_type: SystemType,
    url: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    tags: Vec<String>,
}

fn check_system(b: &SystemBody) -> ApiResult<()> {
    if b.name.trim().is_empty() || b.name.len() > 100 {
        return Err(ApiError::invalid("name", "name: 1 to 100 characters"));
    }
    if !(b.url.starts_with("http://") || b.url.starts_with("https://")) || b.url.len() > 500 {
        return Err(ApiError::invalid("url", "url: an http(s) URL"));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/systems", tag = "docs", summary = "The systems registry",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    responses((status = 200, body = List<SystemView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_systems(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<List<SystemView>>> {
    let data: Vec<SystemView> = st.db.list_systems().await?.into_iter().map(SystemView::from).collect();
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(post, path = "/api/v1/systems", tag = "docs", summary = "Register a system",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), request_body = SystemBody,
    responses((status = 201, body = SystemView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_system(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    JsonBody(b, _): JsonBody<SystemBody>,
) -> ApiResult<(StatusCode, Json<SystemView>)> {
    check_system(&b)?;
    let tags = idea_bank::check_tags(&b.tags).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let now = Utc::now();
    let s = SystemRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: b.name.trim().into(),
        system_type: b.system_type,
        url: b.url,
        owner: b.owner,
        tags,
        status: SystemStatus::Unknown,
        last_check: None,
        created_at: now,
        updated_at: now,
    };
    Ok((StatusCode::CREATED, Json(st.db.create_system(&s).await?.into())))
}

#[utoipa::path(get, path = "/api/v1/systems/{id}", tag = "docs", summary = "One system",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("id" = String, Path)),
    responses((status = 200, body = SystemView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_system(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<SystemView>> {
    Ok(Json(st.db.system(&id).await?.ok_or_else(|| ApiError::not_found(format!("system {id} not found")))?.into()))
}

#[utoipa::path(put, path = "/api/v1/systems/{id}", tag = "docs", summary = "Change a system",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path)), request_body = SystemBody,
    responses((status = 200, body = SystemView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_system(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(id): Path<String>,
    JsonBody(b, _): JsonBody<SystemBody>,
) -> ApiResult<Json<SystemView>> {
    check_system(&b)?;
    let tags = idea_bank::check_tags(&b.tags).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let old = st.db.system(&id).await?.ok_or_else(|| ApiError::not_found(format!("system {id} not found")))?;
    let s = SystemRow {
        name: b.name.trim().into(),
        system_type: b.system_type,
        url: b.url,
        owner: b.owner,
        tags,
        updated_at: Utc::now(),
        ..old
    };
    Ok(Json(st.db.update_system(&s).await?.into()))
}

#[utoipa::path(delete, path = "/api/v1/systems/{id}", tag = "docs", summary = "Remove a system",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_system(
    State(st): State<AppState>,
    Authorized(_): AsAdmin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.db.delete_system(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/systems/{id}/check", tag = "docs", summary = "Probe a system's URL now",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("id" = String, Path)),
    responses((status = 200, body = SystemView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn check_system_now(
    State(st): State<AppState>,
    Authorized(_): AsTrader,
    Path(id): Path<String>,
) -> ApiResult<Json<SystemView>> {
    let s = st.db.system(&id).await?.ok_or_else(|| ApiError::not_found(format!("system {id} not found")))?;
    let status = crate::systems::probe(&crate::systems::client(), &s.url).await;
    let s = SystemRow { status, last_check: Some(Utc::now()), ..s };
    Ok(Json(st.db.update_system(&s).await?.into()))
}
