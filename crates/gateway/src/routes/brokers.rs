//! `GET /api/v1/brokers`: each broker connection, the accounts it serves and its state.

use crate::auth::{AsAdmin, AsViewer, Authorized};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::query::P;
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::broker::{Broker, BrokerConnection};
use serde::Serialize;
use std::sync::Arc;

/// A broker the server routes to, as `serve` wired it.
pub struct BrokerEntry {
    pub name: String,
    /// `paper` or `fix`.
    pub kind: String,
    /// The accounts it serves (`*`: every account no other broker names).
    pub accounts: Vec<String>,
    pub broker: Arc<dyn Broker>,
    pub session: Option<fix::SessionHandle>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BrokerView {
    name: String,
    kind: String,
    accounts: Vec<String>,
    connection: BrokerConnection,
    /// New orders for its accounts are accepted now.
    can_route: bool,
    /// The FIX session (FIX brokers only): status, sequence numbers, message counts, reconnects.
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<fix::SessionInfo>,
}

#[utoipa::path(get, path = "/api/v1/brokers", tag = "orders", summary = "Broker connections: state, accounts served, FIX session", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = List<BrokerView>), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn list(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<List<BrokerView>>> {
    let data: Vec<BrokerView> = st.brokers.iter().map(view).collect();
    Ok(Json(List { total: data.len() as u64, data }))
}

fn view(b: &BrokerEntry) -> BrokerView {
    let connection = b.broker.connection();
    BrokerView {
        name: b.name.clone(),
        kind: b.kind.clone(),
        accounts: b.accounts.clone(),
        connection,
        can_route: connection.can_route(),
        session: b.session.as_ref().map(|s| s.info()),
    }
}

#[utoipa::path(post, path = "/api/v1/brokers/{name}/reset-sequence", tag = "orders", summary = "Start a FIX session's sequence numbers again at 1 (both sides)", description = "For when either side lost its store: logs out and logs on again with ResetSeqNumFlag=Y. Messages the broker did not receive are not resent; the status requests after the logon find where every working order stands. Answers at once; watch the session in GET /api/v1/brokers.", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(("name" = String, Path, description = "The broker's name")), responses((status = 202, description = "Reset requested", body = BrokerView), (status = 404, body = ErrorBody), (status = 409, description = "Not a FIX broker, or its session has stopped", body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn reset_sequence(
    State(st): State<AppState>,
    Authorized(principal): AsAdmin,
    P(name): P<String>,
) -> ApiResult<(StatusCode, Json<BrokerView>)> {
    let Some(b) = st.brokers.iter().find(|b| b.name == name) else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no broker by that name"));
    };
    let Some(session) = &b.session else {
        return Err(ApiError::new(StatusCode::CONFLICT, "NOT_FIX", "only a FIX broker has sequence numbers"));
    };
    session.reset_sequence().map_err(|e| ApiError::new(StatusCode::CONFLICT, "SESSION_STOPPED", e.to_string()))?;
    tracing::warn!(broker = %b.name, by = %principal.name, "FIX sequence numbers reset on request");
    Ok((StatusCode::ACCEPTED, Json(view(b))))
}
