//! Live strategies over HTTP: list them with their state, orders, positions and P&L; add one; start and stop.

use crate::auth::{AsTrader, AsViewer, Authorized};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use strategy::live::{LiveConfig, LiveError, LiveStatus};

/// `{name, kind, symbols, params?, account?, enabled?, max_loss?}`, as a `[[strategies]]` entry of the TOML.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct StrategyConfig(LiveConfig);

/// An instance: `state` (running, stopped, failed), `orders`, `refused`, `fills`, `positions`, `pnl` (its own,
/// before costs), `last_error`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct StrategyStatus(LiveStatus);

#[derive(Serialize, utoipa::ToSchema)]
pub struct StrategyList {
    data: Vec<StrategyStatus>,
    total: u64,
}

fn api_error(e: LiveError) -> ApiError {
    match e {
        LiveError::NotFound(_) => ApiError::not_found(e.to_string()),
        LiveError::Exists(_) => ApiError::conflict(e.to_string()),
        LiveError::Build(strategy::kinds::BuildError::UnknownKind { .. }) => ApiError::invalid("kind", e.to_string()),
        LiveError::Build(_) => ApiError::invalid("params", e.to_string()),
        LiveError::Invalid(m) => ApiError::invalid("body", m),
    }
}

#[utoipa::path(get, path = "/api/v1/strategies", tag = "strategies", summary = "Live strategies with their state, positions and P&L",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    responses((status = 200, body = StrategyList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<StrategyList>> {
    let data: Vec<StrategyStatus> = st.strategies.list().into_iter().map(StrategyStatus).collect();
    Ok(Json(StrategyList { total: data.len() as u64, data }))
}

#[utoipa::path(post, path = "/api/v1/strategies", tag = "strategies", summary = "Add a live strategy (started when enabled); lasts until the server stops",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), request_body = StrategyConfig,
    responses((status = 201, body = StrategyStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Authorized(_): AsTrader,
    JsonBody(StrategyConfig(cfg), _): JsonBody<StrategyConfig>,
) -> ApiResult<(StatusCode, Json<StrategyStatus>)> {
    let s = st.strategies.add(cfg).map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(StrategyStatus(s))))
}

#[utoipa::path(get, path = "/api/v1/strategies/{name}", tag = "strategies", summary = "One live strategy",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("name" = String, Path)),
    responses((status = 200, body = StrategyStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Path(name): Path<String>,
) -> ApiResult<Json<StrategyStatus>> {
    st.strategies.get(&name).map(|s| Json(StrategyStatus(s))).ok_or_else(|| api_error(LiveError::NotFound(name)))
}

#[utoipa::path(post, path = "/api/v1/strategies/{name}/start", tag = "strategies", summary = "Start a stopped or failed strategy",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("name" = String, Path)),
    responses((status = 200, body = StrategyStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn start(
    State(st): State<AppState>,
    Authorized(_): AsTrader,
    Path(name): Path<String>,
) -> ApiResult<Json<StrategyStatus>> {
    st.strategies.start(&name).map(|s| Json(StrategyStatus(s))).map_err(api_error)
}

#[utoipa::path(post, path = "/api/v1/strategies/{name}/stop", tag = "strategies", summary = "Stop a strategy; its working orders are canceled",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("name" = String, Path)),
    responses((status = 200, body = StrategyStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn stop(
    State(st): State<AppState>,
    Authorized(_): AsTrader,
    Path(name): Path<String>,
) -> ApiResult<Json<StrategyStatus>> {
    st.strategies.stop(&name).map(|s| Json(StrategyStatus(s))).map_err(api_error)
}
