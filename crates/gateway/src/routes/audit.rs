use super::{pagination, query, QueryMap};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use order_manager::AuditEntry;

/// `GET /api/v1/audit`: the trail oldest first; `offset`/`limit` page over it, `order_id` narrows it to one order.
pub async fn list(State(st): State<AppState>, principal: Principal, q: QueryMap) -> ApiResult<Json<List<AuditEntry>>> {
    principal.require(Role::Viewer)?;
    let q = query(q)?;
    let (limit, offset) = pagination(&q)?;
    let order_id = q
        .get("order_id")
        .map(|v| v.parse::<u64>().map_err(|_| ApiError::invalid("order_id", "order_id must be a positive integer")))
        .transpose()?;
    let (data, total) = st.oms.audit(offset as u64, limit, order_id)?;
    Ok(Json(List { data, total }))
}
