use crate::auth::{AsAdmin, AsTrader, AsViewer, Authorized};
use crate::body::{exact, parse_bytes, parse_value, Exact, JsonBody};
use crate::error::ErrorBody;
use crate::error::{correlation_id, ApiError, ApiResult};
use crate::query::Q;
use crate::views::PositionView;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use domain::risk::{RiskLimits, SymbolLimits, TradingState};
use domain::{AccountId, Money, Symbol};
use order_manager::{Actor, KillSwitchState, RiskStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, utoipa::ToSchema)]
pub struct PositionsResponse {
    data: Vec<PositionView>,
    total: u64,
    totals: Totals,
    /// The same per account (orders are booked to their sender's account); the desk's figures above are the sum.
    accounts: Vec<AccountView>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct AccountView {
    account: String,
    positions: Vec<PositionView>,
    totals: Totals,
    /// The account's own kill switch is on.
    kill_switch_active: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
/// A total is null only when it does not fit the books (never clipped to a wrong number).
struct Totals {
    realized_today: Option<Money>,
    unrealized: Option<Money>,
    daily_pnl: Option<Money>,
    exposure: Option<Money>,
}

#[utoipa::path(get, path = "/api/v1/positions", tag = "positions", summary = "Positions with realized/unrealized P&L", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = PositionsResponse), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn positions(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<PositionsResponse>> {
    let v = st.oms.positions();
    let data: Vec<PositionView> = v.positions.into_iter().map(PositionView::from).collect();
    let accounts = v
        .accounts
        .into_iter()
        .map(|a| AccountView {
            account: a.account.as_str().to_string(),
            positions: a.positions.into_iter().map(PositionView::from).collect(),
            totals: Totals {
                realized_today: a.realized_today,
                unrealized: a.unrealized,
                daily_pnl: a.daily_pnl,
                exposure: a.exposure,
            },
            kill_switch_active: a.kill_switch_active,
        })
        .collect();
    Ok(Json(PositionsResponse {
        total: data.len() as u64,
        data,
        accounts,
        totals: Totals {
            realized_today: v.realized_today,
            unrealized: v.unrealized,
            daily_pnl: v.daily_pnl,
            exposure: v.exposure,
        },
    }))
}

#[utoipa::path(get, path = "/api/v1/risk/limits", tag = "risk", summary = "The risk limits", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = RiskLimits), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn get_limits(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<RiskLimits>> {
    Ok(Json(st.oms.limits()))
}

/// A partial update: fields left out keep their current values. `reason` is required (limits changes are audited
/// with who and why).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    reason: String,
    max_orders_per_second: Option<u32>,
    max_order_qty_stock: Option<domain::Qty>,
    max_order_qty_future: Option<domain::Qty>,
    #[schema(value_type = Option<f64>)]
    max_notional: Option<Exact<Money>>,
    price_band_bps: Option<u32>,
    position_limit_stock: Option<domain::Qty>,
    position_limit_future: Option<domain::Qty>,
    #[schema(value_type = Option<f64>)]
    daily_loss_limit: Option<Exact<Money>>,
    trading_state: Option<TradingState>,
    symbols: Option<BTreeMap<String, SymbolLimits>>,
}

#[utoipa::path(put, path = "/api/v1/risk/limits", tag = "risk", summary = "Change risk limits (partial; audited with the reason)", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), request_body = LimitsPatch, responses((status = 200, body = RiskLimits), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn put_limits(
    State(st): State<AppState>,
    Authorized(principal): AsAdmin,
    JsonBody(mut p, _): JsonBody<LimitsPatch>,
) -> ApiResult<Json<RiskLimits>> {
    if p.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "reason must say why the limits change"));
    }
    let reason = std::mem::take(&mut p.reason);
    let (max_notional, daily_loss_limit) = (exact(p.max_notional), exact(p.daily_loss_limit));
    let symbols = match p.symbols.take() {
        None => None,
        Some(s) => Some(
            s.into_iter()
                .map(|(k, v)| {
                    let symbol = Symbol::parse(&k.trim().to_ascii_uppercase())
                        .map_err(|why| ApiError::invalid("symbols", format!("a key is not a symbol: it {why}")))?;
                    Ok((symbol, v))
                })
                .collect::<Result<BTreeMap<Symbol, SymbolLimits>, ApiError>>()?,
        ),
    };
    let merge = move |l: &mut RiskLimits| {
        macro_rules! merge {
            ($($f:ident),*) => { $( if let Some(v) = p.$f { l.$f = v; } )* };
        }
        merge!(
            max_orders_per_second,
            max_order_qty_stock,
            max_order_qty_future,
            price_band_bps,
            position_limit_stock,
            position_limit_future,
            trading_state
        );
        if let Some(v) = max_notional {
            l.max_notional = v;
        }
        if let Some(v) = daily_loss_limit {
            l.daily_loss_limit = v;
        }
        if let Some(s) = symbols {
            l.symbols = s;
        }
    };
    let actor = Actor::with_correlation(principal.name, correlation_id());
    Ok(Json(st.oms.update_limits(merge, reason.trim(), &actor).await?))
}

#[utoipa::path(get, path = "/api/v1/risk/status", tag = "risk", summary = "Trading state, daily P&L against the loss limit, kill switch", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = RiskStatus), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn status(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<RiskStatus>> {
    Ok(Json(st.oms.risk_status()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KillSwitchBody {
    reason: String,
    #[serde(default = "yes")]
    cancel_open_orders: bool,
    #[serde(default)]
    flatten: bool,
    /// One account's switch (its orders only); without it, the global switch.
    account: Option<String>,
}

/// An account named in a request: trimmed, not empty.
fn account_of(a: Option<String>) -> ApiResult<Option<AccountId>> {
    match a.map(|a| a.trim().to_string()) {
        None => Ok(None),
        Some(a) if a.is_empty() || a.len() > 128 => Err(ApiError::invalid("account", "1 to 128 characters")),
        Some(a) => Ok(Some(AccountId::new(&a))),
    }
}

fn yes() -> bool {
    true
}

#[utoipa::path(post, path = "/api/v1/risk/kill-switch", tag = "risk", summary = "Activate the kill switch", security(("bearer" = ["trader"]), ("api_key" = ["trader"])), request_body = KillSwitchBody, responses((status = 200, body = KillSwitchState), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn activate_kill_switch(
    State(st): State<AppState>,
    Authorized(principal): AsTrader,
    JsonBody(b, _): JsonBody<KillSwitchBody>,
) -> ApiResult<Json<KillSwitchState>> {
    if b.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "reason is required"));
    }
    let actor = Actor::with_correlation(principal.name, correlation_id());
    let (reason, cancel, flatten) = (b.reason.trim(), b.cancel_open_orders, b.flatten);
    Ok(Json(match account_of(b.account)? {
        None => st.oms.activate_kill_switch(&actor, reason, cancel, flatten).await?,
        Some(a) => st.oms.activate_account_kill_switch(a, &actor, reason, cancel, flatten).await?,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    reason: String,
    /// One account's switch; without it, the global one.
    account: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReleaseQuery {
    /// Why (or in a JSON body).
    reason: Option<String>,
    /// One account's switch; without it, the global one.
    account: Option<String>,
}

#[utoipa::path(delete, path = "/api/v1/risk/kill-switch", tag = "risk", summary = "Release the kill switch", security(("bearer" = ["admin"]), ("api_key" = ["admin"])), params(ReleaseQuery), request_body(content = ReleaseBody, description = "Optional: the reason may come as ?reason= instead"), responses((status = 200, body = KillSwitchState), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// Admins only. The reason comes in a JSON body `{"reason": ...}` or as `?reason=`.
pub async fn release_kill_switch(
    State(st): State<AppState>,
    Authorized(principal): AsAdmin,
    Q(q): Q<ReleaseQuery>,
    body: Bytes,
) -> ApiResult<Json<KillSwitchState>> {
    let (reason, account) = if body.iter().all(|b| b.is_ascii_whitespace()) {
        (q.reason.unwrap_or_default(), q.account)
    } else {
        let b = parse_value::<ReleaseBody>(parse_bytes(&body)?)?;
        (b.reason, b.account.or(q.account))
    };
    if reason.trim().is_empty() {
        return Err(ApiError::invalid("reason", "releasing the kill switch needs a reason"));
    }
    let actor = Actor::with_correlation(principal.name, correlation_id());
    Ok(Json(match account_of(account)? {
        None => st.oms.release_kill_switch(&actor, reason.trim()).await?,
        Some(a) => st.oms.release_account_kill_switch(a, &actor, reason.trim()).await?,
    }))
}
