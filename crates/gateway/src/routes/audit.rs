use crate::auth::{AsViewer, Authorized};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::query::{Limit, Offset, Q};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use order_manager::AuditEntry;
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this order's records.
    order_id: Option<u64>,
    /// `desc` (default: newest first) or `asc` (oldest first, as written).
    order: Option<String>,
    /// 1..1000, default 100.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit<100, 1000>,
    /// Default 0.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    offset: Offset,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", summary = "The audit trail, newest first (order=asc for oldest first)", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(AuditQuery), responses((status = 200, body = List<AuditEntry>), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// `GET /api/v1/audit`: the trail, newest first as a person reading it expects (`order=asc`: oldest first, as it
/// was written); `offset`/`limit` page over it, `order_id` narrows it to one order.
pub async fn list(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<AuditQuery>,
) -> ApiResult<Json<List<AuditEntry>>> {
    let (limit, offset, order_id) = (q.limit.0, q.offset.0, q.order_id);
    let newest_first = match q.order.map(|o| o.trim().to_ascii_lowercase()).as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::invalid("order", "order must be asc or desc")),
    };
    // The journal is a file: read it on the blocking pool, never on an async worker.
    let oms = st.oms.clone();
    let (data, total) =
        tokio::task::spawn_blocking(move || oms.audit_page(offset as u64, limit, order_id, newest_first))
            .await
            .map_err(|_| ApiError::internal("the audit read stopped"))??;
    Ok(Json(List { data, total }))
}
