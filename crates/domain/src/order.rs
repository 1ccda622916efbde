//! Orders, their validation and their state machine.

use crate::account::AccountId;
use crate::instrument::Instrument;
use crate::price::Price;
use crate::quantity::Qty;
use crate::symbol::Symbol;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

pub type OrderId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// +1 for buys, -1 for sells: the sign an execution gives the net position.
    pub fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrderType {
    Market,
    Limit,
    Stop,
    StopLimit,
}

impl OrderType {
    pub fn needs_price(self) -> bool {
        matches!(self, OrderType::Limit | OrderType::StopLimit)
    }
    pub fn needs_stop(self) -> bool {
        matches!(self, OrderType::Stop | OrderType::StopLimit)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TimeInForce {
    #[default]
    Day,
    Gtc,
    Ioc,
    Fok,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PositionType {
    #[default]
    Daytrade,
    Swing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum OrderStatus {
    PendingNew,
    New,
    PartiallyFilled,
    Filled,
    PendingCancel,
    Canceled,
    Rejected,
    Expired,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::PendingNew,
        OrderStatus::New,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::PendingCancel,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Rejected | OrderStatus::Expired)
    }

    /// Working at the broker (or on its way there): counts against position limits and is canceled by the kill switch.
    pub fn is_open(self) -> bool {
        !self.is_terminal()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingNew => "PENDING_NEW",
            OrderStatus::New => "NEW",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::PendingCancel => "PENDING_CANCEL",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Rejected => "REJECTED",
            OrderStatus::Expired => "EXPIRED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One execution. `exec_id` is the broker's id for it and the key that de-duplicates re-sent fills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fill {
    pub exec_id: String,
    pub quantity: Qty,
    pub price: Price,
    pub ts: DateTime<Utc>,
}

/// An order's terms after a modify: the whole quantity (filled part included) and its prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Amendment {
    pub quantity: Qty,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
}

/// What can happen to an order after it was created in PENDING_NEW.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderEvent {
    Accepted {
        broker_order_id: String,
    },
    Rejected {
        code: String,
        reason: String,
    },
    Filled(Fill),
    CancelRequested,
    Canceled {
        reason: String,
    },
    CancelRejected {
        reason: String,
    },
    Expired {
        reason: String,
    },
    /// We asked the broker to modify the order; it keeps working on its old terms until `Replaced`.
    ReplaceRequested(Amendment),
    /// The broker works the order on these terms now.
    Replaced(Amendment),
    ReplaceRejected {
        reason: String,
    },
}

impl OrderEvent {
    /// A stable snake_case name for logs and metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            OrderEvent::Accepted { .. } => "accepted",
            OrderEvent::Rejected { .. } => "rejected",
            OrderEvent::Filled(_) => "filled",
            OrderEvent::CancelRequested => "cancel_requested",
            OrderEvent::Canceled { .. } => "canceled",
            OrderEvent::CancelRejected { .. } => "cancel_rejected",
            OrderEvent::Expired { .. } => "expired",
            OrderEvent::ReplaceRequested(_) => "replace_requested",
            OrderEvent::Replaced(_) => "replaced",
            OrderEvent::ReplaceRejected { .. } => "replace_rejected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition: {event} in state {from} ({detail})")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub event: &'static str,
    pub detail: &'static str,
}

/// The one transition table of the order lifecycle.
///
/// `filled_after` is the cumulative filled quantity once the event is applied; it decides between partial and
/// full for fills and where a rejected cancel returns to.
pub fn transition(
    from: OrderStatus,
    event: &OrderEvent,
    filled_after: Qty,
    quantity: Qty,
) -> Result<OrderStatus, IllegalTransition> {
    use OrderStatus::*;
    let illegal = |detail| IllegalTransition { from, event: event.name(), detail };
    let working_after_fill = if filled_after >= quantity { Filled } else { PartiallyFilled };
    let next = match (from, event) {
        (PendingNew, OrderEvent::Accepted { .. }) => New,
        (PendingNew, OrderEvent::Rejected { .. }) => Rejected,
        // Brokers may report an execution before the acknowledgement; the fill implies the ack.
        (PendingNew | New | PartiallyFilled, OrderEvent::Filled(_)) => working_after_fill,
        // A fill racing a cancel keeps the cancel pending unless it completes the order.
        (PendingCancel, OrderEvent::Filled(_)) => {
            if filled_after >= quantity {
                Filled
            } else {
                PendingCancel
            }
        }
        (New | PartiallyFilled, OrderEvent::CancelRequested) => PendingCancel,
        // Unsolicited cancels (exchange, broker risk) arrive without a pending request.
        (New | PartiallyFilled | PendingCancel, OrderEvent::Canceled { .. }) => Canceled,
        (PendingCancel, OrderEvent::CancelRejected { .. }) => {
            if filled_after.is_positive() {
                PartiallyFilled
            } else {
                New
            }
        }
        (New | PartiallyFilled | PendingCancel, OrderEvent::Expired { .. }) => Expired,
        // A modify leaves the order working where it was; `quantity` is then the amended one, which must stay
        // above what is filled.
        (New | PartiallyFilled, OrderEvent::ReplaceRequested(_)) => from,
        (New | PartiallyFilled | PendingCancel, OrderEvent::Replaced(_) | OrderEvent::ReplaceRejected { .. }) => {
            if matches!(event, OrderEvent::Replaced(_)) && filled_after >= quantity {
                return Err(illegal("replaced quantity is not above the filled quantity"));
            }
            from
        }
        (s, _) if s.is_terminal() => return Err(illegal("order is terminal")),
        _ => return Err(illegal("not in the transition table")),
    };
    if filled_after > quantity {
        return Err(illegal("fill exceeds order quantity"));
    }
    Ok(next)
}

/// The caller's order, already parsed into domain types but not yet validated against the instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub quantity: Qty,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    #[serde(default)]
    pub time_in_force: TimeInForce,
    pub client_order_id: Option<String>,
    #[serde(default)]
    pub position_type: PositionType,
    pub justification: Option<String>,
    /// Who originated it: `manual`, a strategy name, `tp-capital:<signal id>`, `ml:<model>`.
    pub source: Option<String>,
}

impl OrderRequest {
    /// A DAY day-trade order with no client id, justification or source: what strategies and tests build, changing
    /// the fields they need.
    pub fn new(symbol: Symbol, side: Side, order_type: OrderType, quantity: Qty, price: Option<Price>) -> Self {
        OrderRequest {
            symbol,
            side,
            order_type,
            quantity,
            price,
            stop_price: None,
            time_in_force: TimeInForce::Day,
            client_order_id: None,
            position_type: PositionType::Daytrade,
            justification: None,
            source: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError { field, message: message.into() }
}

pub const MAX_CLIENT_ORDER_ID_LEN: usize = 64;
pub const MAX_JUSTIFICATION_LEN: usize = 1000;
/// The largest quantity one order may carry, whatever the risk limits say. It keeps every product of a
/// quantity with a price or a position far inside `i64`, so the arithmetic after validation cannot overflow.
pub const MAX_ORDER_QUANTITY: Qty = Qty(1_000_000_000);

/// Checks everything about an order that does not depend on risk limits.
///
/// Stop rule: a BUY stop triggers when the market trades at or above `stop_price`, so it must be above the last
/// trade; a SELL stop triggers at or below and must be below it. For STOP_LIMIT the limit must not be worse than
/// the trigger from the market's point of view: a BUY's limit is at or above its stop, a SELL's at or below, so
/// the order is marketable at the moment it triggers.
pub fn validate(req: &OrderRequest, instrument: &Instrument, last_trade: Option<Price>) -> Result<(), ValidationError> {
    if !req.quantity.is_positive() {
        return Err(invalid("quantity", "must be a positive integer"));
    }
    if req.quantity > MAX_ORDER_QUANTITY {
        return Err(invalid("quantity", format!("must be at most {MAX_ORDER_QUANTITY}")));
    }
    if !req.quantity.is_multiple_of_lot(instrument.lot) {
        return Err(invalid(
            "quantity",
            format!("must be a multiple of the lot size {} for {}", instrument.lot, instrument.symbol),
        ));
    }
    let tick = instrument.tick_size;
    match (req.order_type.needs_price(), req.price) {
        (true, None) => return Err(invalid("price", format!("required for {:?} orders", req.order_type))),
        (false, Some(_)) => return Err(invalid("price", "not allowed for MARKET and STOP orders (use STOP_LIMIT)")),
        (true, Some(p)) => {
            if !p.is_positive() {
                return Err(invalid("price", "must be positive"));
            }
            if !p.is_on_grid(tick) {
                return Err(invalid(
                    "price",
                    format!("{p} is not on the tick grid of {} (tick {tick})", instrument.symbol),
                ));
            }
        }
        (false, None) => {}
    }
    match (req.order_type.needs_stop(), req.stop_price) {
        (true, None) => return Err(invalid("stop_price", "required for STOP and STOP_LIMIT orders")),
        (false, Some(_)) => return Err(invalid("stop_price", "only allowed for STOP and STOP_LIMIT orders")),
        (true, Some(s)) => {
            if !s.is_positive() {
                return Err(invalid("stop_price", "must be positive"));
            }
            if !s.is_on_grid(tick) {
                return Err(invalid(
                    "stop_price",
                    format!("{s} is not on the tick grid of {} (tick {tick})", instrument.symbol),
                ));
            }
            if let Some(last) = last_trade {
                match req.side {
                    Side::Buy if s <= last => {
                        return Err(invalid(
                            "stop_price",
                            format!("a BUY stop must be above the last trade {last}, or it would trigger at once"),
                        ))
                    }
                    Side::Sell if s >= last => {
                        return Err(invalid(
                            "stop_price",
                            format!("a SELL stop must be below the last trade {last}, or it would trigger at once"),
                        ))
                    }
                    _ => {}
                }
            }
            if let (OrderType::StopLimit, Some(p)) = (req.order_type, req.price) {
                match req.side {
                    Side::Buy if p < s => {
                        return Err(invalid("price", "a BUY STOP_LIMIT needs a limit at or above its stop_price"))
                    }
                    Side::Sell if p > s => {
                        return Err(invalid("price", "a SELL STOP_LIMIT needs a limit at or below its stop_price"))
                    }
                    _ => {}
                }
            }
        }
        (false, None) => {}
    }
    if req.order_type == OrderType::Market && req.time_in_force == TimeInForce::Gtc {
        return Err(invalid("time_in_force", "GTC is not allowed for MARKET orders"));
    }
    if let Some(c) = &req.client_order_id {
        if c.is_empty() || c.len() > MAX_CLIENT_ORDER_ID_LEN {
            return Err(invalid("client_order_id", format!("must be 1 to {MAX_CLIENT_ORDER_ID_LEN} characters")));
        }
        if c.chars().any(|ch| ch.is_control()) {
            return Err(invalid("client_order_id", "must not contain control characters"));
        }
    }
    if let Some(j) = &req.justification {
        if j.chars().count() > MAX_JUSTIFICATION_LEN {
            return Err(invalid("justification", format!("at most {MAX_JUSTIFICATION_LEN} characters")));
        }
    }
    Ok(())
}

/// Checks a modify of `order` to the terms `a` as a new order with those terms would be checked, and that it
/// changes something and keeps the quantity above what is already filled.
pub fn validate_amendment(
    order: &Order,
    a: &Amendment,
    instrument: &Instrument,
    last_trade: Option<Price>,
) -> Result<(), ValidationError> {
    if a.quantity == order.quantity && a.price == order.price && a.stop_price == order.stop_price {
        return Err(invalid("quantity", "the new terms are the order's current terms: nothing to modify"));
    }
    if a.quantity <= order.filled_quantity {
        return Err(invalid(
            "quantity",
            format!("must be above the {} already filled (cancel the order to stop it)", order.filled_quantity),
        ));
    }
    let mut req = OrderRequest::new(order.symbol, order.side, order.order_type, a.quantity, a.price);
    req.stop_price = a.stop_price;
    req.time_in_force = order.time_in_force;
    // A stop that is only repriced is checked against the market like a new one; an unchanged one is not (the
    // market may have moved since it was placed).
    let last = if a.stop_price == order.stop_price { None } else { last_trade };
    validate(&req, instrument, last)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub id: OrderId,
    pub client_order_id: Option<String>,
    pub broker_order_id: Option<String>,
    pub account: AccountId,
    pub symbol: Symbol,
    pub side: Side,
    #[serde(rename = "type")]
    pub order_type: OrderType,
    pub quantity: Qty,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
    pub time_in_force: TimeInForce,
    pub position_type: PositionType,
    pub justification: Option<String>,
    pub source: String,
    pub status: OrderStatus,
    pub filled_quantity: Qty,
    /// Σ price × quantity over fills (in points or BRL, before any multiplier); the average fill price is this
    /// over `filled_quantity`.
    pub filled_value: Price,
    pub fills: Vec<Fill>,
    pub reject_code: Option<String>,
    pub reject_reason: Option<String>,
    /// A modify sent to the broker and not yet answered: the order works on its old terms meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_replace: Option<Amendment>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// A fill whose `exec_id` this order already has: ignored, positions must not move.
    DuplicateFill,
}

impl Order {
    /// The first economic term of `req` (its wire name) that differs from this order's, if any: a repeated
    /// `client_order_id` is the same order only when every term matches. Justification and source are notes and
    /// do not count.
    pub fn differs_from(&self, req: &OrderRequest) -> Option<&'static str> {
        let terms = [
            ("symbol", self.symbol == req.symbol),
            ("side", self.side == req.side),
            ("type", self.order_type == req.order_type),
            ("quantity", self.quantity == req.quantity),
            ("price", self.price == req.price),
            ("stop_price", self.stop_price == req.stop_price),
            ("time_in_force", self.time_in_force == req.time_in_force),
            ("position_type", self.position_type == req.position_type),
        ];
        terms.into_iter().find(|(_, same)| !same).map(|(name, _)| name)
    }

    pub fn new(id: OrderId, account: &AccountId, req: &OrderRequest, now: DateTime<Utc>) -> Order {
        Order {
            id,
            client_order_id: req.client_order_id.clone(),
            broker_order_id: None,
            account: account.clone(),
            symbol: req.symbol,
            side: req.side,
            order_type: req.order_type,
            quantity: req.quantity,
            price: req.price,
            stop_price: req.stop_price,
            time_in_force: req.time_in_force,
            position_type: req.position_type,
            justification: req.justification.clone(),
            source: req.source.clone().unwrap_or_else(|| "manual".to_string()),
            status: OrderStatus::PendingNew,
            filled_quantity: Qty::ZERO,
            filled_value: Price::ZERO,
            fills: Vec::new(),
            reject_code: None,
            reject_reason: None,
            pending_replace: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn leaves_quantity(&self) -> Qty {
        if self.status.is_terminal() {
            Qty::ZERO
        } else {
            self.quantity - self.filled_quantity
        }
    }

    pub fn avg_fill_price(&self) -> Option<f64> {
        (self.filled_quantity.is_positive())
            .then(|| self.filled_value.units() as f64 / self.filled_quantity.get() as f64 / crate::PRICE_SCALE as f64)
    }

    /// Applies an event through the transition table. Illegal events leave the order untouched.
    pub fn apply(&mut self, event: &OrderEvent, now: DateTime<Utc>) -> Result<Applied, IllegalTransition> {
        let mut filled_after = self.filled_quantity;
        if let OrderEvent::Filled(fill) = event {
            if self.fills.iter().any(|f| f.exec_id == fill.exec_id) {
                return Ok(Applied::DuplicateFill);
            }
            if !fill.quantity.is_positive() {
                return Err(IllegalTransition {
                    from: self.status,
                    event: "filled",
                    detail: "non-positive fill quantity",
                });
            }
            // Checked, never saturated: a fill that would overflow the books is refused, not clipped.
            let value = fill
                .price
                .units()
                .checked_mul(fill.quantity.get())
                .and_then(|v| self.filled_value.units().checked_add(v));
            filled_after = match (self.filled_quantity.checked_add(fill.quantity), value) {
                (Some(q), Some(_)) => q,
                _ => {
                    return Err(IllegalTransition {
                        from: self.status,
                        event: "filled",
                        detail: "fill overflows the order's totals",
                    })
                }
            };
        }
        let quantity_after = match event {
            OrderEvent::ReplaceRequested(_) if self.pending_replace.is_some() => {
                return Err(IllegalTransition {
                    from: self.status,
                    event: event.name(),
                    detail: "a replace is pending",
                })
            }
            OrderEvent::ReplaceRejected { .. } if self.pending_replace.is_none() => {
                return Err(IllegalTransition { from: self.status, event: event.name(), detail: "no replace pending" })
            }
            OrderEvent::Replaced(a) => a.quantity,
            _ => self.quantity,
        };
        let next = transition(self.status, event, filled_after, quantity_after)?;
        match event {
            OrderEvent::Accepted { broker_order_id } => self.broker_order_id = Some(broker_order_id.clone()),
            OrderEvent::Rejected { code, reason } => {
                self.reject_code = Some(code.clone());
                self.reject_reason = Some(reason.clone());
            }
            OrderEvent::Filled(fill) => {
                self.filled_quantity = filled_after;
                // Checked above: this cannot overflow.
                self.filled_value = Price(self.filled_value.units() + fill.price.units() * fill.quantity.get());
                self.fills.push(fill.clone());
            }
            OrderEvent::ReplaceRequested(a) => self.pending_replace = Some(*a),
            OrderEvent::Replaced(a) => {
                self.quantity = a.quantity;
                self.price = a.price;
                self.stop_price = a.stop_price;
                self.pending_replace = None;
            }
            OrderEvent::ReplaceRejected { .. } => self.pending_replace = None,
            OrderEvent::CancelRejected { .. }
            | OrderEvent::CancelRequested
            | OrderEvent::Canceled { .. }
            | OrderEvent::Expired { .. } => {}
        }
        self.status = next;
        if next.is_terminal() {
            // A modify still in flight when the order ended has nothing left to change.
            self.pending_replace = None;
        }
        self.updated_at = now;
        Ok(Applied::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Instruments;
    use chrono::NaiveDate;

    fn instruments() -> Instruments {
        Instruments::b3_defaults(NaiveDate::from_ymd_opt(2025, 11, 24).unwrap())
    }

    fn req(order_type: OrderType, side: Side, qty: Qty, price: Option<f64>, stop: Option<f64>) -> OrderRequest {
        OrderRequest {
            symbol: Symbol::lit("PETR4"),
            side,
            order_type,
            quantity: qty,
            price: price.and_then(Price::from_f64),
            stop_price: stop.and_then(Price::from_f64),
            time_in_force: TimeInForce::Day,
            client_order_id: None,
            position_type: PositionType::Daytrade,
            justification: None,
            source: None,
        }
    }

    fn check(r: &OrderRequest) -> Result<(), &'static str> {
        let ins = instruments();
        validate(r, ins.get("PETR4").unwrap(), Price::from_f64(30.0)).map_err(|e| e.field)
    }

    #[test]
    fn validation_fields() {
        assert_eq!(check(&req(OrderType::Limit, Side::Buy, Qty(100), Some(30.0), None)), Ok(()));
        assert_eq!(check(&req(OrderType::Limit, Side::Buy, Qty(0), Some(30.0), None)), Err("quantity"));
        assert_eq!(check(&req(OrderType::Limit, Side::Buy, Qty(150), Some(30.0), None)), Err("quantity"));
        assert_eq!(check(&req(OrderType::Limit, Side::Buy, Qty(100), None, None)), Err("price"));
        assert_eq!(check(&req(OrderType::Limit, Side::Buy, Qty(100), Some(30.005), None)), Err("price"));
        assert_eq!(check(&req(OrderType::Limit, Side::Buy, Qty(100), Some(-1.0), None)), Err("price"));
        assert_eq!(check(&req(OrderType::Market, Side::Buy, Qty(100), Some(30.0), None)), Err("price"));
        assert_eq!(check(&req(OrderType::Market, Side::Buy, Qty(100), None, None)), Ok(()));
        assert_eq!(check(&req(OrderType::Stop, Side::Buy, Qty(100), None, None)), Err("stop_price"));
        assert_eq!(check(&req(OrderType::Limit, Side::Buy, Qty(100), Some(30.0), Some(31.0))), Err("stop_price"));
        let mut gtc = req(OrderType::Market, Side::Buy, Qty(100), None, None);
        gtc.time_in_force = TimeInForce::Gtc;
        assert_eq!(check(&gtc), Err("time_in_force"));
        let mut coid = req(OrderType::Market, Side::Buy, Qty(100), None, None);
        coid.client_order_id = Some("x".repeat(65));
        assert_eq!(check(&coid), Err("client_order_id"));
    }

    #[test]
    fn stops_that_would_trigger_at_once_are_refused_on_both_sides() {
        // Last trade is 30.00.
        assert_eq!(check(&req(OrderType::Stop, Side::Buy, Qty(100), None, Some(31.0))), Ok(()));
        assert_eq!(check(&req(OrderType::Stop, Side::Buy, Qty(100), None, Some(30.0))), Err("stop_price"));
        assert_eq!(check(&req(OrderType::Stop, Side::Buy, Qty(100), None, Some(29.0))), Err("stop_price"));
        assert_eq!(check(&req(OrderType::Stop, Side::Sell, Qty(100), None, Some(29.0))), Ok(()));
        assert_eq!(check(&req(OrderType::Stop, Side::Sell, Qty(100), None, Some(30.0))), Err("stop_price"));
        assert_eq!(check(&req(OrderType::Stop, Side::Sell, Qty(100), None, Some(31.0))), Err("stop_price"));
    }

    #[test]
    fn stop_limit_rule_per_side() {
        assert_eq!(check(&req(OrderType::StopLimit, Side::Buy, Qty(100), Some(31.5), Some(31.0))), Ok(()));
        assert_eq!(check(&req(OrderType::StopLimit, Side::Buy, Qty(100), Some(31.0), Some(31.0))), Ok(()));
        assert_eq!(check(&req(OrderType::StopLimit, Side::Buy, Qty(100), Some(30.9), Some(31.0))), Err("price"));
        assert_eq!(check(&req(OrderType::StopLimit, Side::Sell, Qty(100), Some(28.5), Some(29.0))), Ok(()));
        assert_eq!(check(&req(OrderType::StopLimit, Side::Sell, Qty(100), Some(29.1), Some(29.0))), Err("price"));
    }

    fn fill(id: &str, q: Qty) -> OrderEvent {
        OrderEvent::Filled(Fill { exec_id: id.into(), quantity: q, price: Price(300_000), ts: Utc::now() })
    }

    #[test]
    fn lifecycle_and_duplicate_fills() {
        let now = Utc::now();
        let mut o =
            Order::new(1, &AccountId::new("t"), &req(OrderType::Limit, Side::Buy, Qty(300), Some(30.0), None), now);
        assert_eq!(o.status, OrderStatus::PendingNew);
        o.apply(&OrderEvent::Accepted { broker_order_id: "B1".into() }, now).unwrap();
        assert_eq!(o.status, OrderStatus::New);
        o.apply(&fill("e1", Qty(100)), now).unwrap();
        assert_eq!(o.status, OrderStatus::PartiallyFilled);
        assert_eq!(o.apply(&fill("e1", Qty(100)), now), Ok(Applied::DuplicateFill));
        assert_eq!(o.filled_quantity, Qty(100));
        o.apply(&OrderEvent::CancelRequested, now).unwrap();
        o.apply(&fill("e2", Qty(100)), now).unwrap();
        assert_eq!(o.status, OrderStatus::PendingCancel);
        o.apply(&OrderEvent::CancelRejected { reason: "too late".into() }, now).unwrap();
        assert_eq!(o.status, OrderStatus::PartiallyFilled);
        o.apply(&fill("e3", Qty(100)), now).unwrap();
        assert_eq!(o.status, OrderStatus::Filled);
        assert_eq!(o.avg_fill_price(), Some(30.0));
        let before = o.clone();
        assert!(o.apply(&OrderEvent::Canceled { reason: "x".into() }, now).is_err());
        assert!(o.apply(&fill("e4", Qty(1)), now).is_err());
        assert_eq!(o, before, "a refused transition changes nothing");
    }

    #[test]
    fn a_replace_changes_the_terms_only_when_the_broker_confirms() {
        let now = Utc::now();
        let mut o =
            Order::new(1, &AccountId::new("t"), &req(OrderType::Limit, Side::Buy, Qty(300), Some(30.0), None), now);
        o.apply(&OrderEvent::Accepted { broker_order_id: "B1".into() }, now).unwrap();
        o.apply(&fill("e1", Qty(100)), now).unwrap();
        let a = Amendment { quantity: Qty(500), price: Price::from_f64(30.5), stop_price: None };
        o.apply(&OrderEvent::ReplaceRequested(a), now).unwrap();
        assert_eq!((o.status, o.quantity, o.pending_replace), (OrderStatus::PartiallyFilled, Qty(300), Some(a)));
        assert!(o.apply(&OrderEvent::ReplaceRequested(a), now).is_err(), "one replace at a time");
        o.apply(&OrderEvent::Replaced(a), now).unwrap();
        assert_eq!((o.quantity, o.price, o.pending_replace), (Qty(500), a.price, None));
        assert!(o.apply(&OrderEvent::ReplaceRejected { reason: "x".into() }, now).is_err(), "nothing pending");
        let below = Amendment { quantity: Qty(100), ..a };
        assert!(o.apply(&OrderEvent::Replaced(below), now).is_err(), "not down to the filled quantity");
        o.apply(&OrderEvent::ReplaceRequested(below), now).unwrap();
        o.apply(&OrderEvent::ReplaceRejected { reason: "too late".into() }, now).unwrap();
        assert_eq!((o.quantity, o.pending_replace), (Qty(500), None));
    }

    #[test]
    fn amendments_are_validated_like_new_orders() {
        let ins = instruments();
        let petr = ins.get("PETR4").unwrap();
        let now = Utc::now();
        let mut o =
            Order::new(1, &AccountId::new("t"), &req(OrderType::Limit, Side::Buy, Qty(300), Some(30.0), None), now);
        o.filled_quantity = Qty(100);
        let last = Price::from_f64(30.0);
        let amend = |q: i64, p: Option<f64>, s: Option<f64>| Amendment {
            quantity: Qty(q),
            price: p.and_then(Price::from_f64),
            stop_price: s.and_then(Price::from_f64),
        };
        assert_eq!(validate_amendment(&o, &amend(400, Some(30.5), None), petr, last), Ok(()));
        let field = |a: Amendment| validate_amendment(&o, &a, petr, last).map_err(|e| e.field);
        assert_eq!(field(amend(300, Some(30.0), None)), Err("quantity"), "nothing changes");
        assert_eq!(field(amend(100, Some(30.0), None)), Err("quantity"), "not above the filled 100");
        assert_eq!(field(amend(350, Some(30.0), None)), Err("quantity"), "not a lot multiple");
        assert_eq!(field(amend(400, Some(30.005), None)), Err("price"), "off the grid");
        assert_eq!(field(amend(400, None, None)), Err("price"), "a limit needs its price");
        assert_eq!(field(amend(400, Some(30.0), Some(29.0))), Err("stop_price"), "no stop on a limit");
    }

    #[test]
    fn overfill_is_refused() {
        let now = Utc::now();
        let mut o =
            Order::new(1, &AccountId::new("t"), &req(OrderType::Limit, Side::Buy, Qty(100), Some(30.0), None), now);
        o.apply(&OrderEvent::Accepted { broker_order_id: "B1".into() }, now).unwrap();
        assert!(o.apply(&fill("e1", Qty(200)), now).is_err());
        assert_eq!(o.filled_quantity, Qty::ZERO);
        assert_eq!(o.status, OrderStatus::New);
    }

    #[test]
    fn cancel_from_pending_new_is_illegal() {
        let now = Utc::now();
        let mut o =
            Order::new(1, &AccountId::new("t"), &req(OrderType::Limit, Side::Buy, Qty(100), Some(30.0), None), now);
        assert!(o.apply(&OrderEvent::CancelRequested, now).is_err());
        assert!(o.apply(&OrderEvent::Expired { reason: "x".into() }, now).is_err());
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn arb_event() -> impl Strategy<Value = OrderEvent> {
        prop_oneof![
            "[a-z]{1,3}".prop_map(|b| OrderEvent::Accepted { broker_order_id: b }),
            Just(OrderEvent::Rejected { code: "X".into(), reason: "r".into() }),
            ("e[0-9]{1,2}", 1i64..400, 1i64..1000).prop_map(|(id, q, p)| OrderEvent::Filled(Fill {
                exec_id: id,
                quantity: Qty(q),
                price: Price(p * 100),
                ts: DateTime::<Utc>::UNIX_EPOCH,
            })),
            Just(OrderEvent::CancelRequested),
            Just(OrderEvent::Canceled { reason: "c".into() }),
            Just(OrderEvent::CancelRejected { reason: "c".into() }),
            Just(OrderEvent::Expired { reason: "e".into() }),
            (1i64..1000).prop_map(|q| OrderEvent::ReplaceRequested(Amendment {
                quantity: Qty(q),
                price: Some(Price(200)),
                stop_price: None
            })),
            (1i64..1000).prop_map(|q| OrderEvent::Replaced(Amendment {
                quantity: Qty(q),
                price: Some(Price(200)),
                stop_price: None
            })),
            Just(OrderEvent::ReplaceRejected { reason: "r".into() }),
        ]
    }

    proptest! {
        #[test]
        fn never_an_illegal_state(qty in 1i64..1000, events in proptest::collection::vec(arb_event(), 0..60)) {
            let now = DateTime::<Utc>::UNIX_EPOCH;
            let req = OrderRequest {
                symbol: Symbol::lit("PETR4"), side: Side::Buy, order_type: OrderType::Limit, quantity: Qty(qty),
                price: Some(Price(100)), stop_price: None, time_in_force: TimeInForce::Day,
                client_order_id: None, position_type: PositionType::Daytrade, justification: None, source: None,
            };
            let mut o = Order::new(1, &AccountId::new("t"), &req, now);
            let mut seen = std::collections::HashMap::<String, Qty>::new();
            for ev in &events {
                let before = o.clone();
                let outcome = o.apply(ev, now);
                match outcome {
                    Ok(Applied::Changed) => {
                        // A legal transition from a terminal state does not exist.
                        prop_assert!(!before.status.is_terminal());
                        if let OrderEvent::Filled(f) = ev {
                            prop_assert!(!seen.contains_key(&f.exec_id));
                            seen.insert(f.exec_id.clone(), f.quantity);
                        }
                    }
                    Ok(Applied::DuplicateFill) => prop_assert_eq!(&o, &before),
                    Err(_) => prop_assert_eq!(&o, &before),
                }
                prop_assert!(o.filled_quantity <= o.quantity);
                prop_assert!(o.filled_quantity >= Qty::ZERO);
                // Fills are never double counted: the cumulative quantity is the sum of distinct executions.
                prop_assert_eq!(o.filled_quantity, seen.values().sum::<Qty>());
                prop_assert_eq!(o.fills.len(), seen.len());
                prop_assert_eq!(o.status == OrderStatus::Filled, o.filled_quantity == o.quantity);
                if o.status == OrderStatus::PartiallyFilled {
                    prop_assert!(o.filled_quantity.is_positive() && o.filled_quantity < o.quantity);
                }
                if o.status == OrderStatus::New || o.status == OrderStatus::PendingNew {
                    prop_assert_eq!(o.filled_quantity, Qty::ZERO);
                }
                if o.status == OrderStatus::Rejected {
                    prop_assert_eq!(o.filled_quantity, Qty::ZERO);
                }
                if o.status.is_terminal() {
                    prop_assert!(o.pending_replace.is_none());
                }
                if let (OrderEvent::Replaced(a), Ok(Applied::Changed)) = (ev, &outcome) {
                    prop_assert_eq!((o.quantity, o.price), (a.quantity, a.price));
                }
            }
        }
    }
}
