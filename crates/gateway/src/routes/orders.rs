use crate::auth::{AsTrader, AsViewer, Authorized, Principal};
use crate::body::{exact, parse_bytes, parse_text, Exact};
use crate::error::ErrorBody;
use crate::error::{correlation_id, ApiError, ApiResult};
use crate::query::{Limit, Offset, Time, P, Q};
use crate::views::{List, OrderView};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::order::{OrderRequest, OrderStatus, OrderType, PositionType, Side, TimeInForce};
use domain::{Price, Symbol};
use order_manager::{Actor, Modify, OrderFilter, SubmitOutcome};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    symbol: String,
    side: Side,
    #[serde(rename = "type")]
    order_type: OrderType,
    quantity: domain::Qty,
    #[schema(value_type = Option<f64>)]
    price: Option<Exact<Price>>,
    #[schema(value_type = Option<f64>)]
    stop_price: Option<Exact<Price>>,
    time_in_force: Option<TimeInForce>,
    client_order_id: Option<String>,
    position_type: Option<PositionType>,
    justification: Option<String>,
    source: Option<String>,
}

/// A modify: at least one of the fields; the ones left out keep their value.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModifyBody {
    /// The order's whole new quantity (what is filled included); must stay above the filled quantity.
    quantity: Option<domain::Qty>,
    #[schema(value_type = Option<f64>)]
    price: Option<Exact<Price>>,
    #[schema(value_type = Option<f64>)]
    stop_price: Option<Exact<Price>>,
}

fn actor(p: &Principal) -> Actor {
    Actor::with_correlation(p.name.clone(), correlation_id())
}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", summary = "Submit an order (validation, risk, journal, broker)", security(("bearer" = ["trader"]), ("api_key" = ["trader"])), request_body = OrderBody, responses((status = 201, description = "Accepted and routed", body = OrderView), (status = 200, description = "A repeated client_order_id with the same terms: the original order", body = OrderView), (status = 409, description = "The client_order_id was used for an order with different terms (details.differs names the first)", body = ErrorBody), (status = 422, description = "Invalid, naming the field", body = ErrorBody), (status = 503, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this, or a risk check rejected the order (its code, and the REJECTED order in details)", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// `POST /api/v1/orders` and `POST /api/v1/execute`: 201 with the new order, 200 with the original order for a
/// repeated `client_order_id`, 403 with the check's code for a risk rejection, 422 naming the field when invalid.
pub async fn create(
    State(st): State<AppState>,
    Authorized(principal): AsTrader,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "the request body is too large")
        } else {
            ApiError::bad_request(format!("could not read the body: {e}"))
        }
    })?;
    let value = parse_bytes(&bytes)?;
    let actor = actor(&principal);
    // A form's " petr4" is PETR4; what is still not a ticker after that is refused here, naming the field.
    let parsed = parse_text::<OrderBody>(&bytes).and_then(|b| {
        let symbol = Symbol::parse(&b.symbol.trim().to_ascii_uppercase())
            .map_err(|why| ApiError::invalid("symbol", format!("symbol {why}")))?;
        Ok((b, symbol))
    });
    let (b, symbol) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let field = e.details.as_ref().and_then(|d| d["field"].as_str()).unwrap_or("body").to_string();
            // Invalid orders belong in the audit trail too; failing to journal one is not the caller's problem.
            if let Err(je) = st.oms.record_invalid(&value, &field, &e.message, &actor).await {
                tracing::error!(error = %je, "could not journal an invalid order");
            }
            return Err(e);
        }
    };
    let req = OrderRequest {
        symbol,
        side: b.side,
        order_type: b.order_type,
        quantity: b.quantity,
        price: exact(b.price),
        stop_price: exact(b.stop_price),
        time_in_force: b.time_in_force.unwrap_or_default(),
        client_order_id: b.client_order_id,
        position_type: b.position_type.unwrap_or_default(),
        justification: b.justification,
        source: b.source,
    };
    match st.oms.submit(req, &actor).await? {
        SubmitOutcome::Created(o) => Ok((StatusCode::CREATED, Json(o.into()))),
        SubmitOutcome::Existing(o) => Ok((StatusCode::OK, Json(o.into()))),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// Comma-separated statuses.
    status: Option<String>,
    symbol: Option<String>,
    /// BUY or SELL.
    side: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(value_type = Option<String>)]
    from: Option<Time>,
    /// Created at or before (RFC 3339).
    #[param(value_type = Option<String>)]
    to: Option<Time>,
    /// 1..1000, default 100.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit<100, 1000>,
    /// Default 0.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    offset: Offset,
}

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", summary = "List orders, newest first", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(OrdersQuery), responses((status = 200, body = List<OrderView>), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<OrdersQuery>,
) -> ApiResult<Json<List<OrderView>>> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(|x| {
                    OrderStatus::parse(x.trim())
                        .ok_or_else(|| ApiError::invalid("status", format!("unknown status {x:?}")))
                })
                .collect::<ApiResult<Vec<_>>>()
        })
        .transpose()?;
    let side = match q.side.map(|s| s.trim().to_ascii_uppercase()) {
        None => None,
        Some(s) if s == "BUY" => Some(Side::Buy),
        Some(s) if s == "SELL" => Some(Side::Sell),
        Some(_) => return Err(ApiError::invalid("side", "side must be BUY or SELL")),
    };
    let filter = OrderFilter {
        status,
        symbol: q.symbol.map(|s| s.trim().to_ascii_uppercase()),
        side,
        from: q.from.map(|t| t.0),
        to: q.to.map(|t| t.0),
        limit: q.limit.0,
        offset: q.offset.0,
    };
    // A filtered listing scans the orders in slices (the lock released between them): a blocking-pool job.
    let oms = st.oms.clone();
    let (orders, total) = tokio::task::spawn_blocking(move || oms.list(&filter))
        .await
        .map_err(|_| ApiError::internal("the order listing stopped"))?;
    Ok(Json(List { data: orders.into_iter().map(OrderView::from).collect(), total: total as u64 }))
}

/// `POST /api/v1/execute` is the original system's name for `POST /api/v1/orders`; same handler, same contract.
#[utoipa::path(post, path = "/api/v1/execute", tag = "orders", summary = "Same as POST /api/v1/orders (the original system's name)",
    security(("bearer" = ["trader"]), ("api_key" = ["trader"])),
    request_body = OrderBody,
    responses((status = 201, body = OrderView), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn execute(
    st: State<AppState>,
    who: AsTrader,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<OrderView>)> {
    create(st, who, body).await
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", summary = "One order with its fills", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("id" = u64, Path, description = "Order id")), responses((status = 200, body = OrderView), (status = 404, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn get_one(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    P(id): P<domain::order::OrderId>,
) -> ApiResult<Json<OrderView>> {
    st.oms.get(id).map(|o| Json(o.into())).ok_or_else(|| ApiError::not_found(format!("order {id} not found")))
}

#[utoipa::path(delete, path = "/api/v1/orders/{id}", tag = "orders", summary = "Cancel an order", security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("id" = u64, Path, description = "Order id")), responses((status = 200, body = OrderView), (status = 404, body = ErrorBody), (status = 409, description = "Not cancelable in its state", body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// `DELETE /api/v1/orders/{id}`: requests a cancel; the order comes back PENDING_CANCEL (or already CANCELED).
pub async fn cancel(
    State(st): State<AppState>,
    Authorized(principal): AsTrader,
    P(id): P<domain::order::OrderId>,
) -> ApiResult<Json<OrderView>> {
    let order = st.oms.cancel(id, &actor(&principal)).await?;
    Ok(Json(order.into()))
}

#[utoipa::path(patch, path = "/api/v1/orders/{id}", tag = "orders", summary = "Modify a working order's quantity and/or prices", description = "Validated and risk-checked as a new order with the new terms would be. The order keeps working on its old terms, with `pending_replace` showing the new ones, until the broker confirms (the order then shows them) or refuses.", security(("bearer" = ["trader"]), ("api_key" = ["trader"])), params(("id" = u64, Path, description = "Order id")), request_body = ModifyBody, responses((status = 200, description = "The modify was sent: the order, with `pending_replace` or already replaced", body = OrderView), (status = 404, body = ErrorBody), (status = 409, description = "Not modifiable in its state, or a modify is already pending", body = ErrorBody), (status = 422, description = "Invalid, naming the field", body = ErrorBody), (status = 503, description = "Order routing is down", body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this, or a risk check refused the new terms (its code)", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// `PATCH /api/v1/orders/{id}`: a modify (cancel/replace at the broker).
pub async fn modify(
    State(st): State<AppState>,
    Authorized(principal): AsTrader,
    P(id): P<domain::order::OrderId>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<OrderView>> {
    let bytes = body.map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?;
    let b = parse_text::<ModifyBody>(&bytes)?;
    let change = Modify { quantity: b.quantity, price: exact(b.price), stop_price: exact(b.stop_price) };
    if change == Modify::default() {
        return Err(ApiError::invalid("quantity", "give quantity, price or stop_price to modify"));
    }
    let order = st.oms.modify(id, change, &actor(&principal)).await?;
    Ok(Json(order.into()))
}
