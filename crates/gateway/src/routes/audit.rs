use super::{pagination, query, QueryMap};
use crate::auth::{Principal, Role};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use order_manager::AuditEntry;

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", summary = "The audit trail, newest first (order=asc for oldest first)", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("order_id" = String, Query, description = "Only this order's records"), ("order" = String, Query, description = "desc (default: newest first) or asc (oldest first)"), ("limit" = String, Query, description = "1..1000"), ("offset" = String, Query, description = "Default 0")), responses((status = 200, body = List<AuditEntry>), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// `GET /api/v1/audit`: the trail, newest first as a person reading it expects (`order=asc`: oldest first, as it
/// was written); `offset`/`limit` page over it, `order_id` narrows it to one order.
pub async fn list(State(st): State<AppState>, principal: Principal, q: QueryMap) -> ApiResult<Json<List<AuditEntry>>> {
    principal.require(Role::Viewer)?;
    let q = query(q)?;
    let (limit, offset) = pagination(&q)?;
    let order_id = q
        .get("order_id")
        .map(|v| v.parse::<u64>().map_err(|_| ApiError::invalid("order_id", "order_id must be a positive integer")))
        .transpose()?;
    let newest_first = match q.get("order").map(|o| o.trim().to_ascii_lowercase()).as_deref() {
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
