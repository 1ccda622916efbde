//! `GET /api/v1/brokers`: each broker connection, the accounts it serves and its state.

use crate::auth::{AsViewer, Authorized};
use crate::error::{ApiResult, ErrorBody};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
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
    let data: Vec<BrokerView> = st
        .brokers
        .iter()
        .map(|b| {
            let connection = b.broker.connection();
            BrokerView {
                name: b.name.clone(),
                kind: b.kind.clone(),
                accounts: b.accounts.clone(),
                connection,
                can_route: connection.can_route(),
                session: b.session.as_ref().map(|s| s.info()),
            }
        })
        .collect();
    Ok(Json(List { total: data.len() as u64, data }))
}
