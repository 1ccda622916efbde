//! Backtests over HTTP: start one on the server's recorded market data, follow its progress, read its figures and
//! report, cancel or remove it. The runs go to a few worker threads (`backtest::jobs`), never the async workers.

use crate::auth::{AsTrader, AsViewer, Authorized};
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backtest::jobs::{JobError, JobRequest, JobView};
use serde::{Deserialize, Serialize};

/// `{strategy, symbols, params?, from?, to?, settings?}`: `params` as the strategy takes them (`{"fast": 5}`),
/// `from`/`to` inclusive trading dates, `settings` `{capital, slippage_ticks, latency: {to_venue_us, to_us_us},
/// costs, cdi}` (all optional).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct BacktestRequest(JobRequest);

/// A backtest job: `status` (queued, running, done, failed, canceled), `events`/`expected_events`/`progress`,
/// `summary` (summary.json) and `equity` (`[epoch ms, R$]`, at most 500 points) once done, `error` when failed.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct BacktestJob(JobView);

#[derive(Serialize, utoipa::ToSchema)]
pub struct BacktestList {
    data: Vec<BacktestJob>,
    total: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StrategyKind {
    name: &'static str,
    about: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StrategyKinds {
    data: Vec<StrategyKind>,
}

#[utoipa::path(get, path = "/api/v1/backtests/strategies", tag = "backtests", summary = "The strategies a backtest can run, with their parameters",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    responses((status = 200, body = StrategyKinds), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn strategies(Authorized(_): AsViewer) -> ApiResult<Json<StrategyKinds>> {
    let data = strategy::kinds::KINDS.iter().map(|k| StrategyKind { name: k.name, about: k.about }).collect();
    Ok(Json(StrategyKinds { data }))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("backtest {id} not found"))
}

#[utoipa::path(post, path = "/api/v1/backtests", tag = "backtests", summary = "Start a backtest on the recorded market data",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), request_body = BacktestRequest,
    responses((status = 202, body = BacktestJob), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "Unknown strategy, bad parameter, no data", body = ErrorBody),
        (status = 503, description = "Too many backtests waiting", body = ErrorBody)))]
pub async fn create(
    State(st): State<AppState>,
    Authorized(_): AsTrader,
    JsonBody(BacktestRequest(req), _): JsonBody<BacktestRequest>,
) -> ApiResult<(StatusCode, Json<BacktestJob>)> {
    let jobs = st.backtests.clone();
    // Finding the data reads file metadata: off the async workers.
    let submitted = tokio::task::spawn_blocking(move || jobs.submit(req, chrono::Utc::now()))
        .await
        .map_err(|e| ApiError::unavailable(format!("backtest submission failed: {e}")))?;
    match submitted {
        Ok(v) => Ok((StatusCode::ACCEPTED, Json(BacktestJob(v)))),
        Err(JobError::Invalid { field, message }) => Err(ApiError::invalid(field, message)),
        Err(e @ JobError::Busy(_)) => Err(ApiError::unavailable(e.to_string())),
    }
}

#[utoipa::path(get, path = "/api/v1/backtests", tag = "backtests", summary = "Backtests, newest first (without their curves)",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    responses((status = 200, body = BacktestList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<BacktestList>> {
    let data: Vec<BacktestJob> = st.backtests.list().into_iter().map(BacktestJob).collect();
    Ok(Json(BacktestList { total: data.len() as u64, data }))
}

#[utoipa::path(get, path = "/api/v1/backtests/{id}", tag = "backtests", summary = "One backtest: progress, then figures and equity curve",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("id" = String, Path)),
    responses((status = 200, body = BacktestJob), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Path(id): Path<String>,
) -> ApiResult<Json<BacktestJob>> {
    st.backtests.get(&id).map(|v| Json(BacktestJob(v))).ok_or_else(|| not_found(&id))
}

#[utoipa::path(delete, path = "/api/v1/backtests/{id}", tag = "backtests", summary = "Cancel a backtest if it runs, and remove it with its report",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(st): State<AppState>,
    Authorized(_): AsTrader,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let jobs = st.backtests.clone();
    let key = id.clone();
    let removed = tokio::task::spawn_blocking(move || jobs.delete(&key))
        .await
        .map_err(|e| ApiError::unavailable(format!("backtest removal failed: {e}")))?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

#[utoipa::path(get, path = "/api/v1/backtests/{id}/files/{name}", tag = "backtests",
    summary = "A file of a finished backtest's report: report.html, equity.png, summary.json, orders/fills/positions/trades .csv or .parquet",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("id" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The file"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn file(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let path = st.backtests.report_file(&id, &name).ok_or_else(|| {
        ApiError::not_found(format!("backtest {id} has no file {name:?} (finished runs have report.html, summary.json, orders/fills/positions/trades .csv and .parquet)"))
    })?;
    let bytes = tokio::fs::read(&path).await.map_err(|e| ApiError::not_found(format!("{name}: {e}")))?;
    let kind = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("csv") => "text/csv; charset=utf-8",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    // The report is self-contained (no script, nothing fetched); a strict policy keeps it that way in the browser.
    let csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";
    Ok(([(header::CONTENT_TYPE, kind), (header::CONTENT_SECURITY_POLICY, csp)], bytes).into_response())
}
