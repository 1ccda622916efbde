//! The adapter's view of each order it routed, and what a broker's message means for it.
//!
//! Every event goes through the domain's transition table before it leaves the adapter, so a resent
//! ExecutionReport (PossDup after a reconnect), a late duplicate or a status answer that says what we already
//! know becomes nothing, and the Order Manager only hears what moves an order. Fills are keyed by ExecID; a status
//! answer (ExecType=I) whose CumQty is ahead of the fills we have seen becomes one derived fill for the
//! difference, priced from AvgPx, so an execution whose report was lost (gap-filled) is booked once.

use domain::order::{transition, Amendment, Fill, OrderEvent, OrderId, OrderStatus, Side};
use domain::{Price, Qty, Symbol};
use fix::tags;
use fix::Message;
use std::collections::HashSet;

/// What the adapter remembers about one order.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub order_id: OrderId,
    pub symbol: Symbol,
    pub side: Side,
    pub quantity: Qty,
    /// The ClOrdID the broker knows the order by (the last accepted one).
    pub cl_ord_id: String,
    /// How many ClOrdIDs this order has used (the next one is `<order>.<uses>`).
    pub uses: u32,
    pub status: OrderStatus,
    pub cum: Qty,
    /// Σ price units × quantity over the fills seen.
    pub value: i128,
    pub exec_ids: HashSet<String>,
    pub broker_order_id: Option<String>,
    /// A replace in flight: its ClOrdID and the terms it asks for.
    pub pending_replace: Option<(String, Amendment)>,
    /// When the order ended (filled, canceled, rejected, expired), to forget it some time later.
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Tracked {
    /// Applies `event` if the transition table allows it: returns it to be sent to the Order Manager.
    pub fn apply(&mut self, event: OrderEvent) -> Option<OrderEvent> {
        self.apply_at(event, None)
    }

    /// [`Tracked::apply`], noting `now` as the end when the event ends the order.
    pub fn apply_at(&mut self, event: OrderEvent, now: Option<chrono::DateTime<chrono::Utc>>) -> Option<OrderEvent> {
        let filled_after = match &event {
            OrderEvent::Filled(f) => {
                if self.exec_ids.contains(&f.exec_id) {
                    return None;
                }
                self.cum.checked_add(f.quantity)?
            }
            _ => self.cum,
        };
        let quantity_after = match &event {
            OrderEvent::Replaced(a) => a.quantity,
            _ => self.quantity,
        };
        let next = match transition(self.status, &event, filled_after, quantity_after) {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(order_id = self.order_id, error = %e, "broker message changes nothing");
                return None;
            }
        };
        match &event {
            OrderEvent::Filled(f) => {
                self.exec_ids.insert(f.exec_id.clone());
                self.cum = filled_after;
                self.value += i128::from(f.price.units()) * i128::from(f.quantity.get());
            }
            OrderEvent::Accepted { broker_order_id } => self.broker_order_id = Some(broker_order_id.clone()),
            OrderEvent::Replaced(a) => {
                self.quantity = a.quantity;
                if let Some((cl, _)) = self.pending_replace.take() {
                    self.cl_ord_id = cl;
                }
            }
            OrderEvent::ReplaceRejected { .. } => self.pending_replace = None,
            _ => {}
        }
        self.status = next;
        if next.is_terminal() && self.ended_at.is_none() {
            self.ended_at = now;
        }
        Some(event)
    }

    /// What an ExecutionReport for this order means, as events in order (usually zero or one).
    pub fn on_execution_report(&mut self, m: &Message, now: chrono::DateTime<chrono::Utc>) -> Vec<OrderEvent> {
        let exec_type = m.get(tags::EXEC_TYPE).unwrap_or_default();
        let text = |default: &str| m.get_str(tags::TEXT).unwrap_or(default).to_string();
        let mut out = Vec::new();
        let mut push = |t: &mut Tracked, e: OrderEvent| {
            if let Some(e) = t.apply_at(e, Some(now)) {
                out.push(e);
            }
        };
        // Any report but a reject or a status answer implies the acknowledgement (brokers may send a fill first).
        if let (Some(id), OrderStatus::PendingNew) = (m.get_str(tags::ORDER_ID), self.status) {
            if !matches!(exec_type, b"8" | b"I" | b"D") {
                push(self, OrderEvent::Accepted { broker_order_id: id.to_string() });
            }
        }
        match exec_type {
            // New, and the pending states: the acknowledgement above is all they say.
            b"0" | b"A" | b"6" | b"E" => {}
            b"F" | b"1" | b"2" => match fill_of(m, now) {
                Ok(fill) => push(self, OrderEvent::Filled(fill)),
                Err(why) => {
                    metrics::counter!("ts_fix_unbookable_fills_total").increment(1);
                    tracing::error!(order_id = self.order_id, message = %m.display(), why, "a fill could not be booked");
                }
            },
            b"4" => push(self, OrderEvent::Canceled { reason: text("canceled by the broker") }),
            b"C" | b"3" => push(self, OrderEvent::Expired { reason: text("expired at the broker") }),
            b"5" => {
                let cl = m.get_str(tags::CL_ORD_ID).unwrap_or_default();
                let asked = self.pending_replace.as_ref().filter(|(pending, _)| pending == cl).map(|(_, a)| *a);
                // The terms the broker now works: ours when it confirms our request, else what it says.
                let terms = asked.or_else(|| terms_of(m));
                match terms {
                    Some(a) => {
                        if asked.is_none() {
                            // Unsolicited (a broker-side restatement): the order is known by the new id now.
                            self.pending_replace = Some((cl.to_string(), a));
                        }
                        push(self, OrderEvent::Replaced(a));
                    }
                    None => {
                        tracing::error!(order_id = self.order_id, message = %m.display(), "a replace report without readable terms")
                    }
                }
            }
            b"8" => {
                let code =
                    m.get_str(tags::ORD_REJ_REASON).map_or("BROKER_REJECT".into(), |r| format!("BROKER_REJECT_{r}"));
                push(self, OrderEvent::Rejected { code, reason: text("rejected by the broker") });
            }
            b"I" | b"D" => self.on_status(m, now, &mut push),
            other => {
                tracing::warn!(order_id = self.order_id, exec_type = %String::from_utf8_lossy(other), "ExecType not handled");
            }
        }
        out
    }

    /// A status answer (ExecType=I) or restatement: catch up with what the broker says.
    fn on_status(
        &mut self,
        m: &Message,
        now: chrono::DateTime<chrono::Utc>,
        push: &mut impl FnMut(&mut Tracked, OrderEvent),
    ) {
        let status = m.get(tags::ORD_STATUS).unwrap_or_default();
        let unknown = status == b"8";
        if unknown {
            let reason = m.get_str(tags::TEXT).unwrap_or("the broker does not know this order").to_string();
            if self.status == OrderStatus::PendingNew {
                push(self, OrderEvent::Rejected { code: "UNKNOWN_AT_BROKER".into(), reason });
            } else {
                push(self, OrderEvent::Canceled { reason: format!("reconciliation: {reason}") });
            }
            return;
        }
        if let (OrderStatus::PendingNew, Some(id)) = (self.status, m.get_str(tags::ORDER_ID)) {
            push(self, OrderEvent::Accepted { broker_order_id: id.to_string() });
        }
        if let Some(fill) = self.missed_fill(m, now) {
            metrics::counter!("ts_fix_derived_fills_total").increment(1);
            tracing::warn!(order_id = self.order_id, quantity = %fill.quantity, price = %fill.price, "fill derived from a status answer (its report never arrived)");
            push(self, OrderEvent::Filled(fill));
        }
        match status {
            b"4" => push(self, OrderEvent::Canceled { reason: "canceled at the broker (reconciliation)".into() }),
            b"C" | b"3" => push(self, OrderEvent::Expired { reason: "expired at the broker (reconciliation)".into() }),
            _ => {}
        }
    }

    /// The execution a status answer implies beyond the fills seen: CumQty minus ours, at the price that makes the
    /// broker's AvgPx (rounded half away from zero to 1/10,000).
    fn missed_fill(&self, m: &Message, now: chrono::DateTime<chrono::Utc>) -> Option<Fill> {
        let cum = Qty(i64::try_from(m.get_u64(tags::CUM_QTY)?).ok()?);
        if cum <= self.cum {
            return None;
        }
        let missing = cum - self.cum;
        // AvgPx in 1e-8 units: brokers send more decimals than a tick has.
        let avg = decimal_scaled(m.get_str(tags::AVG_PX)?, 8)?;
        let total = avg.checked_mul(i128::from(cum.get()))?; // 1e-8 units
        let ours = self.value.checked_mul(10_000)?;
        let units = domain::price::div_round(total - ours, i128::from(missing.get()) * 10_000);
        let price = Price(i64::try_from(units).ok().filter(|u| *u > 0)?);
        let order_ref = m.get_str(tags::ORDER_ID).unwrap_or("?");
        Some(Fill { exec_id: format!("status:{order_ref}:{cum}"), quantity: missing, price, ts: now })
    }
}

/// The terms an ExecutionReport states: OrderQty, Price, StopPx.
fn terms_of(m: &Message) -> Option<Amendment> {
    let quantity = Qty(i64::try_from(m.get_u64(tags::ORDER_QTY)?).ok()?);
    let price = |tag| m.get_str(tag).map(Price::parse_decimal).transpose().ok();
    Some(Amendment { quantity, price: price(tags::PRICE)?, stop_price: price(tags::STOP_PX)? })
}

fn fill_of(m: &Message, now: chrono::DateTime<chrono::Utc>) -> Result<Fill, &'static str> {
    let exec_id = m.get_str(tags::EXEC_ID).ok_or("ExecID(17) missing")?.to_string();
    let qty = m.get_u64(tags::LAST_QTY).ok_or("LastQty(32) missing or not a whole number")?;
    let qty = Qty(i64::try_from(qty).map_err(|_| "LastQty(32) too large")?);
    if !qty.is_positive() {
        return Err("LastQty(32) is zero");
    }
    let px = m.get_str(tags::LAST_PX).ok_or("LastPx(31) missing")?;
    let price = Price::parse_decimal(px).map_err(|_| "LastPx(31) is not a price with at most 4 decimals")?;
    if !price.is_positive() {
        return Err("LastPx(31) is not positive");
    }
    Ok(Fill { exec_id, quantity: qty, price, ts: now })
}

/// `text` (a plain decimal) times 10^scale, with digits past `scale` rounded half away from zero.
pub fn decimal_scaled(text: &str, scale: u32) -> Option<i128> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || int.len() > 18 || frac.len() > 30 {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let fb = frac.as_bytes();
    for i in 0..scale as usize {
        v = v * 10 + i128::from(fb.get(i).map_or(0, |b| b - b'0'));
    }
    if fb.get(scale as usize).is_some_and(|b| *b >= b'5') {
        v += 1;
    }
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fix::MessageBuilder;

    fn tracked(qty: i64) -> Tracked {
        Tracked {
            order_id: 7,
            symbol: Symbol::lit("PETR4"),
            side: Side::Buy,
            quantity: Qty(qty),
            cl_ord_id: "x.7.0".into(),
            uses: 1,
            status: OrderStatus::PendingNew,
            cum: Qty::ZERO,
            value: 0,
            exec_ids: HashSet::new(),
            broker_order_id: None,
            pending_replace: None,
            ended_at: None,
        }
    }

    fn report(fields: &[(u32, &str)]) -> Message {
        let mut b = MessageBuilder::new("8");
        b.field(49, "B").field(56, "T").int(34, 1).field(52, "20261206-12:00:00");
        for (t, v) in fields {
            b.field(*t, v);
        }
        Message::parse(&b.finish()).unwrap()
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::UNIX_EPOCH
    }

    #[test]
    fn a_life_with_a_resent_fill_and_a_repeated_ack() {
        let mut t = tracked(300);
        let ack = report(&[(37, "O1"), (17, "E1"), (150, "0"), (39, "0")]);
        assert_eq!(t.on_execution_report(&ack, now()), vec![OrderEvent::Accepted { broker_order_id: "O1".into() }]);
        assert!(t.on_execution_report(&ack, now()).is_empty(), "a resent ack changes nothing");
        let part = report(&[(37, "O1"), (17, "E2"), (150, "F"), (39, "1"), (32, "100"), (31, "38.45"), (14, "100")]);
        assert_eq!(t.on_execution_report(&part, now()).len(), 1);
        assert!(t.on_execution_report(&part, now()).is_empty(), "the same ExecID is booked once");
        // A status answer says 300 done at an average of 38.50: the missing 200 were at 38.525.
        let status = report(&[(37, "O1"), (17, "E9"), (150, "I"), (39, "2"), (14, "300"), (6, "38.5")]);
        let ev = t.on_execution_report(&status, now());
        match ev.as_slice() {
            [OrderEvent::Filled(f)] => {
                assert_eq!((f.quantity, f.price), (Qty(200), Price::parse_decimal("38.525").unwrap()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.status, OrderStatus::Filled);
        assert!(t.on_execution_report(&status, now()).is_empty(), "a second status answer derives nothing");
    }

    #[test]
    fn rejects_cancels_and_unknown_orders() {
        let mut t = tracked(100);
        let rej = report(&[(37, "O1"), (17, "E1"), (150, "8"), (39, "8"), (103, "3"), (58, "too big")]);
        assert_eq!(
            t.on_execution_report(&rej, now()),
            vec![OrderEvent::Rejected { code: "BROKER_REJECT_3".into(), reason: "too big".into() }]
        );
        let mut t = tracked(100);
        let unknown = report(&[(37, "NONE"), (17, "E1"), (150, "I"), (39, "8"), (58, "unknown order")]);
        assert!(
            matches!(t.on_execution_report(&unknown, now()).as_slice(), [OrderEvent::Rejected { code, .. }] if code == "UNKNOWN_AT_BROKER")
        );
        let mut t = tracked(100);
        t.on_execution_report(&report(&[(37, "O1"), (17, "E1"), (150, "0"), (39, "0")]), now());
        let canceled = report(&[(37, "O1"), (17, "E2"), (150, "4"), (39, "4")]);
        assert!(matches!(t.on_execution_report(&canceled, now()).as_slice(), [OrderEvent::Canceled { .. }]));
        assert_eq!(t.status, OrderStatus::Canceled);
    }

    #[test]
    fn the_end_of_an_order_is_noted_for_forgetting_it_later() {
        let mut t = tracked(100);
        let t0 = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::hours(1);
        t.on_execution_report(&report(&[(37, "O1"), (17, "E1"), (150, "0"), (39, "0")]), t0);
        assert_eq!(t.ended_at, None);
        t.on_execution_report(&report(&[(37, "O1"), (17, "E2"), (150, "4"), (39, "4")]), t0);
        assert_eq!(t.ended_at, Some(t0));
    }

    #[test]
    fn decimals_scale_and_round() {
        assert_eq!(decimal_scaled("38.5", 4), Some(385_000));
        assert_eq!(decimal_scaled("38.123456789", 8), Some(3_812_345_679));
        assert_eq!(decimal_scaled("0.00005", 4), Some(1));
        assert_eq!(decimal_scaled("x", 4), None);
        assert_eq!(decimal_scaled(".", 4), None);
        assert_eq!(decimal_scaled("1e5", 4), None);
    }
}
