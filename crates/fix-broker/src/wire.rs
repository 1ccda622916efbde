//! Orders as FIX 4.4 messages (bodies: the session adds header and trailer).

use crate::orders::Tracked;
use chrono::{DateTime, Utc};
use domain::order::{Amendment, Order, OrderType, Side, TimeInForce};
use fix::{tags, MessageBuilder};

pub(crate) fn utc_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d-%H:%M:%S%.3f").to_string()
}

fn side(s: Side) -> &'static str {
    match s {
        Side::Buy => "1",
        Side::Sell => "2",
    }
}

fn ord_type(t: OrderType) -> &'static str {
    match t {
        OrderType::Market => "1",
        OrderType::Limit => "2",
        OrderType::Stop => "3",
        OrderType::StopLimit => "4",
    }
}

fn time_in_force(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Day => "0",
        TimeInForce::Gtc => "1",
        TimeInForce::Ioc => "3",
        TimeInForce::Fok => "4",
    }
}

/// NewOrderSingle (D).
pub(crate) fn new_order(
    cl_ord_id: &str,
    o: &Order,
    account: &str,
    exchange: &str,
    now: DateTime<Utc>,
) -> MessageBuilder {
    let mut m = MessageBuilder::new("D");
    m.field(tags::CL_ORD_ID, cl_ord_id);
    let terms = Amendment { quantity: o.quantity, price: o.price, stop_price: o.stop_price };
    order_terms(&mut m, o, &terms, account, exchange, now);
    m
}

/// What D and G both carry: who, what, and the terms.
fn order_terms(m: &mut MessageBuilder, o: &Order, a: &Amendment, account: &str, exchange: &str, now: DateTime<Utc>) {
    m.field(tags::ACCOUNT, account)
        .field(tags::SYMBOL, o.symbol.as_str())
        .field(tags::SECURITY_EXCHANGE, exchange)
        .field(tags::SIDE, side(o.side))
        .field(tags::TRANSACT_TIME, utc_timestamp(now))
        .int(tags::ORDER_QTY, a.quantity.get().unsigned_abs())
        .field(tags::ORD_TYPE, ord_type(o.order_type));
    if let Some(p) = a.price {
        m.field(tags::PRICE, p.to_string());
    }
    if let Some(p) = a.stop_price {
        m.field(tags::STOP_PX, p.to_string());
    }
    m.field(tags::TIME_IN_FORCE, time_in_force(o.time_in_force));
}

/// OrderCancelReplaceRequest (G): the order's whole new terms under a new ClOrdID.
pub(crate) fn replace(
    t: &Tracked,
    request_id: &str,
    o: &Order,
    a: &Amendment,
    account: &str,
    exchange: &str,
    now: DateTime<Utc>,
) -> MessageBuilder {
    let mut m = MessageBuilder::new("G");
    m.field(tags::ORIG_CL_ORD_ID, &t.cl_ord_id).field(tags::CL_ORD_ID, request_id);
    if let Some(id) = &t.broker_order_id {
        m.field(tags::ORDER_ID, id);
    }
    order_terms(&mut m, o, a, account, exchange, now);
    m
}

/// OrderCancelRequest (F) for the order's current ClOrdID.
pub(crate) fn cancel(t: &Tracked, request_id: &str, now: DateTime<Utc>) -> MessageBuilder {
    let mut m = MessageBuilder::new("F");
    m.field(tags::ORIG_CL_ORD_ID, &t.cl_ord_id).field(tags::CL_ORD_ID, request_id);
    if let Some(id) = &t.broker_order_id {
        m.field(tags::ORDER_ID, id);
    }
    m.field(tags::SYMBOL, t.symbol.as_str())
        .field(tags::SIDE, side(t.side))
        .field(tags::TRANSACT_TIME, utc_timestamp(now))
        .int(tags::ORDER_QTY, t.quantity.get().unsigned_abs());
    m
}

/// OrderStatusRequest (H).
pub(crate) fn status_request(t: &Tracked, now: DateTime<Utc>) -> MessageBuilder {
    let mut m = MessageBuilder::new("H");
    m.field(tags::CL_ORD_ID, &t.cl_ord_id);
    if let Some(id) = &t.broker_order_id {
        m.field(tags::ORDER_ID, id);
    }
    m.field(tags::ORD_STATUS_REQ_ID, format!("{}-{}", t.order_id, now.timestamp_millis()))
        .field(tags::SYMBOL, t.symbol.as_str())
        .field(tags::SIDE, side(t.side));
    m
}
