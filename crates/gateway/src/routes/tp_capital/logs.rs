//! The ingestion log.

use crate::auth::{AsViewer, Authorized};
use crate::error::{ApiResult, ErrorBody};
use crate::query::{one_of, Limit, Q};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use storage::{IngestOutcome, LogLevel};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// debug, info, warn or error.
    level: Option<String>,
    /// 1..1000, default 100.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit<100, 1000>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LogView {
    id: i64,
    ts: DateTime<Utc>,
    level: LogLevel,
    channel_id: Option<String>,
    message_id: Option<i64>,
    outcome: IngestOutcome,
    message: String,
}

#[utoipa::path(get, path = "/api/v1/tp-capital/logs", tag = "tp-capital", summary = "The newest ingestion log entries",
    security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])),
    params(LogsQuery),
    responses((status = 200, body = List<LogView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn logs(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<LogsQuery>,
) -> ApiResult<Json<List<LogView>>> {
    let limit = q.limit.0;
    let level = one_of("level", &q.level, LogLevel::parse, LogLevel::choices)?;
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
