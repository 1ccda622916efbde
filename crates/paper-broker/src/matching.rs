//! The paper broker's matching rules, without a runtime, a channel or a clock: the live paper broker runs them
//! against the simulated market on its task, and a backtest's venue runs the very same rules against the replayed
//! book at the data's time. Everything it decides comes out as [`BrokerEvent`]s pushed to the caller's vector.

use chrono::{DateTime, NaiveDate, Utc};
use domain::broker::{BrokerEvent, BrokerOrderSnapshot};
use domain::calendar::TradingCalendar;
use domain::order::{Amendment, Fill, Order, OrderEvent, OrderId, OrderType, Side, TimeInForce};
use domain::{Price, Qty, Symbol};
use std::collections::BTreeMap;

/// Where marketable quantity finds its counterparty: the simulated market live, the replayed book in a backtest.
pub trait Liquidity {
    fn knows(&self, symbol: &Symbol) -> bool;

    /// Takes up to `qty` from the opposite side, no worse than `limit` (none: any price); the pieces filled.
    fn execute(
        &mut self,
        symbol: &Symbol,
        side: Side,
        qty: Qty,
        limit: Option<Price>,
        now: DateTime<Utc>,
    ) -> Vec<(Price, Qty)>;

    /// What [`Liquidity::execute`] could take right now (for FOK).
    fn available(&self, symbol: &Symbol, side: Side, limit: Option<Price>) -> Qty;

    /// The quantity others display on `side` at `price` (the queue an order joining there stands behind), for the
    /// optional queue-position estimate; zero when unknown.
    fn displayed(&self, _symbol: &Symbol, _side: Side, _price: Price) -> Qty {
        Qty::ZERO
    }
}

/// A print on the tape, as the matcher reads it.
#[derive(Debug, Clone, Copy)]
pub struct Print {
    pub symbol: Symbol,
    pub price: Price,
    pub quantity: Qty,
    /// One of our own fills printed back: it says nothing about other participants' interest at our price.
    pub ours: bool,
    pub ts: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Working {
    id: OrderId,
    broker_order_id: String,
    symbol: Symbol,
    side: Side,
    order_type: OrderType,
    quantity: Qty,
    filled: Qty,
    fills: u32,
    price: Option<Price>,
    stop_price: Option<Price>,
    tif: TimeInForce,
    triggered: bool,
    session: NaiveDate,
    /// With the queue-position estimate: the quantity still ahead of it at its price.
    queue_ahead: Option<Qty>,
}

impl Working {
    fn from_order(o: &Order, session: NaiveDate) -> Working {
        Working {
            id: o.id,
            broker_order_id: o.broker_order_id.clone().unwrap_or_else(|| format!("PB-{}", o.id)),
            symbol: o.symbol,
            side: o.side,
            order_type: o.order_type,
            quantity: o.quantity,
            filled: o.filled_quantity,
            fills: o.fills.len() as u32,
            price: o.price,
            stop_price: o.stop_price,
            tif: o.time_in_force,
            // A restored stop that had partially filled must have triggered.
            triggered: o.filled_quantity.is_positive(),
            session,
            queue_ahead: None,
        }
    }

    fn leaves(&self) -> Qty {
        self.quantity - self.filled
    }

    /// The limit the order executes under right now: none for a market (or triggered stop-market) order.
    fn limit(&self) -> Option<Price> {
        match self.order_type {
            OrderType::Market | OrderType::Stop => None,
            OrderType::Limit | OrderType::StopLimit => self.price,
        }
    }

    fn is_waiting_for_trigger(&self) -> bool {
        matches!(self.order_type, OrderType::Stop | OrderType::StopLimit) && !self.triggered
    }
}

/// The working orders and the rules that fill, trigger, cancel and expire them:
/// - marketable quantity takes liquidity level by level, so a large order gets several fills (partial fills);
/// - resting limit quantity fills passively when the tape trades through its price, up to the printed size;
/// - STOP triggers when a trade prints at or beyond the stop (BUY at or above, SELL at or below) and then behaves
///   as MARKET; STOP_LIMIT then behaves as LIMIT;
/// - IOC executes what it can and expires the rest; FOK executes everything at once or expires untouched;
/// - a MARKET remainder that finds no liquidity expires (B3 does not leave it priced at anything);
/// - DAY orders expire when the session date changes; GTC orders stay.
#[derive(Debug, Clone)]
pub struct Matcher {
    calendar: TradingCalendar,
    working: BTreeMap<OrderId, Working>,
    session: Option<NaiveDate>,
    queue_estimate: bool,
}

impl Matcher {
    /// A matcher whose session is `now`'s.
    pub fn new(calendar: TradingCalendar, now: DateTime<Utc>) -> Matcher {
        let session = Some(calendar.session_date(now));
        Matcher { calendar, working: BTreeMap::new(), session, queue_estimate: false }
    }

    /// Resting limits also fill at the touch: an order joining a price stands behind what was displayed there
    /// ([`Liquidity::displayed`]); prints at its price eat that queue first, then fill it. Off by default (a print at
    /// the price then fills nothing: only prints through it do).
    pub fn with_queue_estimate(mut self, on: bool) -> Matcher {
        self.queue_estimate = on;
        self
    }

    /// Resumes an order the broker had acknowledged before a restart.
    pub fn restore(&mut self, o: &Order) {
        let w = Working::from_order(o, self.calendar.session_date(o.created_at));
        self.working.insert(o.id, w);
    }

    pub fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
        self.working
            .values()
            .map(|w| BrokerOrderSnapshot {
                order_id: w.id,
                broker_order_id: w.broker_order_id.clone(),
                filled_quantity: w.filled,
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.working.is_empty()
    }

    /// A new order reaches the venue at `now`.
    pub fn on_new(
        &mut self,
        order: &Order,
        liquidity: &mut impl Liquidity,
        now: DateTime<Utc>,
        out: &mut Vec<BrokerEvent>,
    ) {
        let mut w = Working::from_order(order, self.calendar.session_date(now));
        w.filled = Qty::ZERO;
        w.fills = 0;
        w.triggered = false;
        if !liquidity.knows(&order.symbol) {
            let reason = format!("{} is not traded here", order.symbol);
            emit(out, order.id, OrderEvent::Rejected { code: "UNKNOWN_SYMBOL".into(), reason }, now);
            return;
        }
        emit(out, order.id, OrderEvent::Accepted { broker_order_id: w.broker_order_id.clone() }, now);
        if w.tif == TimeInForce::Fok {
            let available = liquidity.available(&w.symbol, w.side, w.limit());
            if w.is_waiting_for_trigger() || available < w.quantity {
                let reason = "FOK: not enough liquidity to fill at once".into();
                emit(out, w.id, OrderEvent::Expired { reason }, now);
                return;
            }
        }
        if !w.is_waiting_for_trigger() {
            execute_aggressive(&mut w, liquidity, now, out);
        }
        if let (true, Some(limit)) = (self.queue_estimate, w.limit()) {
            w.queue_ahead = Some(liquidity.displayed(&w.symbol, w.side, limit));
        }
        self.rest_or_finish(w, now, out);
    }

    /// A cancel request reaches the venue at `now`.
    pub fn on_cancel(&mut self, id: OrderId, now: DateTime<Utc>, out: &mut Vec<BrokerEvent>) {
        let event = match self.working.remove(&id) {
            Some(_) => OrderEvent::Canceled { reason: "canceled on request".into() },
            None => OrderEvent::CancelRejected {
                reason: "order is not working at the broker (already filled, expired or unknown)".into(),
            },
        };
        emit(out, id, event, now);
    }

    /// A modify reaches the venue at `now`. A working order takes the new terms (what is filled stays filled); a
    /// new price or a larger quantity loses its place in the queue, as at B3, and an order the new price makes
    /// marketable trades at once.
    pub fn on_replace(
        &mut self,
        id: OrderId,
        a: &Amendment,
        liquidity: &mut impl Liquidity,
        now: DateTime<Utc>,
        out: &mut Vec<BrokerEvent>,
    ) {
        let Some(mut w) = self.working.remove(&id) else {
            let reason = "order is not working at the broker (already filled, expired or unknown)".into();
            emit(out, id, OrderEvent::ReplaceRejected { reason }, now);
            return;
        };
        if a.quantity <= w.filled {
            let reason = format!("{} is already filled: the quantity must stay above it", w.filled);
            self.working.insert(id, w);
            emit(out, id, OrderEvent::ReplaceRejected { reason }, now);
            return;
        }
        let loses_priority = a.price != w.price || a.quantity > w.quantity;
        (w.quantity, w.price, w.stop_price) = (a.quantity, a.price, a.stop_price);
        emit(out, id, OrderEvent::Replaced(*a), now);
        if loses_priority {
            w.queue_ahead = match (self.queue_estimate, w.limit()) {
                (true, Some(limit)) => Some(liquidity.displayed(&w.symbol, w.side, limit)),
                _ => None,
            };
        }
        if !w.is_waiting_for_trigger() {
            execute_aggressive(&mut w, liquidity, now, out);
        }
        self.rest_or_finish(w, now, out);
    }

    /// A print on the tape: triggers stops, fills resting limits it trades through.
    pub fn on_print(&mut self, t: &Print, liquidity: &mut impl Liquidity, out: &mut Vec<BrokerEvent>) {
        // Most prints find nothing working (a backtest sends millions): no allocation for them.
        if self.working.is_empty() {
            return;
        }
        let now = t.ts;
        let candidates: Vec<OrderId> = self.working.values().filter(|o| o.symbol == t.symbol).map(|o| o.id).collect();
        for id in candidates {
            let Some(mut w) = self.working.remove(&id) else {
                continue;
            };
            if w.is_waiting_for_trigger() {
                let hit = match (w.side, w.stop_price) {
                    (Side::Buy, Some(s)) => t.price >= s,
                    (Side::Sell, Some(s)) => t.price <= s,
                    _ => false,
                };
                if !hit {
                    self.working.insert(id, w);
                    continue;
                }
                w.triggered = true;
                execute_aggressive(&mut w, liquidity, now, out);
                self.rest_or_finish(w, now, out);
                continue;
            }
            if let (Some(limit), false) = (w.limit(), t.ours) {
                // The opposite side moved through our price: take what crosses.
                execute_aggressive(&mut w, liquidity, now, out);
                // Someone traded at a price worse than ours with the aggressor on the other side: our resting
                // order was ahead of them.
                let through = match w.side {
                    Side::Buy => t.price < limit,
                    Side::Sell => t.price > limit,
                };
                if through && w.leaves().is_positive() {
                    let q = w.leaves().min(t.quantity);
                    fill(&mut w, limit, q, now, out);
                } else if let (true, Some(ahead)) = (t.price == limit, w.queue_ahead) {
                    // At the touch: the print eats the queue ahead first; what is left of it reaches us.
                    let eaten = ahead.min(t.quantity);
                    w.queue_ahead = Some(ahead - eaten);
                    let q = w.leaves().min(t.quantity - eaten);
                    if q.is_positive() {
                        fill(&mut w, limit, q, now, out);
                    }
                }
            }
            if w.leaves().is_positive() {
                self.working.insert(id, w);
            }
        }
    }

    /// The opposite side of `symbol` moved (a new quote or book): a resting limit it now crosses fills at its own
    /// price (a resting order gets no price improvement), as far as the liquidity goes. Stops trigger on prints only.
    pub fn on_market_change(
        &mut self,
        symbol: &Symbol,
        liquidity: &mut impl Liquidity,
        now: DateTime<Utc>,
        out: &mut Vec<BrokerEvent>,
    ) {
        if self.working.is_empty() {
            return;
        }
        let candidates: Vec<OrderId> = self
            .working
            .values()
            .filter(|o| o.symbol == *symbol && o.limit().is_some() && !o.is_waiting_for_trigger())
            .map(|o| o.id)
            .collect();
        for id in candidates {
            let Some(mut w) = self.working.remove(&id) else { continue };
            let Some(limit) = w.limit() else { continue };
            for (_, qty) in liquidity.execute(&w.symbol, w.side, w.leaves(), Some(limit), now) {
                fill(&mut w, limit, qty, now, out);
            }
            if w.leaves().is_positive() {
                self.working.insert(id, w);
            }
        }
    }

    /// Time passes: DAY orders of an earlier session expire when the session date changes.
    pub fn on_time(&mut self, now: DateTime<Utc>, out: &mut Vec<BrokerEvent>) {
        let today = self.calendar.session_date(now);
        let changed = self.session.is_some_and(|s| s != today);
        self.session = Some(today);
        if !changed {
            return;
        }
        let expired: Vec<OrderId> =
            self.working.values().filter(|o| o.tif == TimeInForce::Day && o.session < today).map(|o| o.id).collect();
        for id in expired {
            self.working.remove(&id);
            emit(out, id, OrderEvent::Expired { reason: "DAY order: session ended".into() }, now);
        }
    }

    /// After an aggressive pass: IOC/FOK remainders expire, filled orders leave, the rest works.
    fn rest_or_finish(&mut self, w: Working, now: DateTime<Utc>, out: &mut Vec<BrokerEvent>) {
        if w.leaves().is_zero() {
            return;
        }
        let immediate = matches!(w.tif, TimeInForce::Ioc | TimeInForce::Fok);
        if immediate && !w.is_waiting_for_trigger() {
            let reason = format!("{:?}: unfilled remainder {}", w.tif, w.leaves());
            emit(out, w.id, OrderEvent::Expired { reason }, now);
            return;
        }
        if w.limit().is_none() && !w.is_waiting_for_trigger() {
            let reason = format!("MARKET: no liquidity for the remainder {}", w.leaves());
            emit(out, w.id, OrderEvent::Expired { reason }, now);
            return;
        }
        self.working.insert(w.id, w);
    }
}

fn emit(out: &mut Vec<BrokerEvent>, order_id: OrderId, event: OrderEvent, ts: DateTime<Utc>) {
    out.push(BrokerEvent { order_id, event, ts });
}

fn fill(w: &mut Working, price: Price, qty: Qty, now: DateTime<Utc>, out: &mut Vec<BrokerEvent>) {
    w.fills += 1;
    w.filled += qty;
    let exec_id = format!("{}-{}", w.broker_order_id, w.fills);
    emit(out, w.id, OrderEvent::Filled(Fill { exec_id, quantity: qty, price, ts: now }), now);
}

fn execute_aggressive(w: &mut Working, liquidity: &mut impl Liquidity, now: DateTime<Utc>, out: &mut Vec<BrokerEvent>) {
    for (price, qty) in liquidity.execute(&w.symbol, w.side, w.leaves(), w.limit(), now) {
        fill(w, price, qty, now, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::order::{OrderRequest, PositionType};

    /// A fixed ask ladder that is never depleted: enough to see the rules, with no runtime and no clock.
    struct Ladder(Vec<(Price, Qty)>);

    impl Liquidity for Ladder {
        fn knows(&self, symbol: &Symbol) -> bool {
            symbol.as_str() == "PETR4"
        }
        fn execute(
            &mut self,
            _: &Symbol,
            side: Side,
            qty: Qty,
            limit: Option<Price>,
            _: DateTime<Utc>,
        ) -> Vec<(Price, Qty)> {
            let mut left = qty;
            let mut out = Vec::new();
            for &(p, q) in self.0.iter().filter(|_| side == Side::Buy) {
                if left.is_zero() || limit.is_some_and(|l| p > l) {
                    break;
                }
                let take = left.min(q);
                out.push((p, take));
                left -= take;
            }
            out
        }
        fn available(&self, _: &Symbol, _: Side, limit: Option<Price>) -> Qty {
            self.0.iter().filter(|(p, _)| limit.is_none_or(|l| *p <= l)).fold(Qty::ZERO, |a, (_, q)| a + *q)
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn order(id: OrderId, t_: OrderType, qty: i64, price: Option<i64>, tif: TimeInForce, at: DateTime<Utc>) -> Order {
        let req = OrderRequest {
            symbol: Symbol::lit("PETR4"),
            side: Side::Buy,
            order_type: t_,
            quantity: Qty(qty),
            price: price.map(Price),
            stop_price: None,
            time_in_force: tif,
            client_order_id: None,
            position_type: PositionType::Daytrade,
            justification: None,
            source: None,
        };
        Order::new(id, &domain::AccountId::new("bt"), &req, at)
    }

    #[test]
    fn book_walk_passive_fill_through_the_tape_and_day_expiry_without_a_runtime() {
        let t0 = t("2025-03-10T14:00:00Z");
        let mut m = Matcher::new(TradingCalendar::Continuous, t0);
        let mut book = Ladder(vec![(Price(385_000), Qty(100)), (Price(385_100), Qty(300))]);
        let mut out = Vec::new();
        m.on_new(&order(1, OrderType::Market, 200, None, TimeInForce::Day, t0), &mut book, t0, &mut out);
        let fills: Vec<_> = out
            .iter()
            .filter_map(|e| match &e.event {
                OrderEvent::Filled(f) => Some((f.price, f.quantity)),
                _ => None,
            })
            .collect();
        assert_eq!(fills, vec![(Price(385_000), Qty(100)), (Price(385_100), Qty(100))], "walks two levels");
        out.clear();

        // A bid below the ladder rests, then fills when someone sells through it, up to the printed size.
        m.on_new(&order(2, OrderType::Limit, 500, Some(384_000), TimeInForce::Day, t0), &mut book, t0, &mut out);
        assert_eq!(m.working_orders().len(), 1);
        let print =
            Print { symbol: Symbol::lit("PETR4"), price: Price(383_900), quantity: Qty(300), ours: false, ts: t0 };
        out.clear();
        m.on_print(&print, &mut book, &mut out);
        assert!(matches!(&out[0].event, OrderEvent::Filled(f) if f.quantity == Qty(300) && f.price == Price(384_000)));
        m.on_print(&Print { ours: true, ..print }, &mut book, &mut out);
        assert_eq!(out.len(), 1, "our own print says nothing about others' interest");

        // The rest of the DAY order expires when the session date changes, at the time the caller says.
        out.clear();
        m.on_time(t("2025-03-10T20:00:00Z"), &mut out);
        assert!(out.is_empty());
        m.on_time(t("2025-03-11T12:00:00Z"), &mut out);
        assert!(matches!(&out[0].event, OrderEvent::Expired { .. }) && out[0].ts == t("2025-03-11T12:00:00Z"));
        assert!(m.is_empty());
    }

    #[test]
    fn a_replace_takes_the_new_terms_and_trades_when_they_cross() {
        let t0 = t("2025-03-10T14:00:00Z");
        let mut m = Matcher::new(TradingCalendar::Continuous, t0);
        let mut book = Ladder(vec![(Price(385_000), Qty(100)), (Price(385_100), Qty(1_000))]);
        let mut out = Vec::new();
        m.on_new(&order(1, OrderType::Limit, 300, Some(384_000), TimeInForce::Day, t0), &mut book, t0, &mut out);
        out.clear();
        let a = Amendment { quantity: Qty(500), price: Some(Price(385_000)), stop_price: None };
        m.on_replace(1, &a, &mut book, t0, &mut out);
        let kinds: Vec<_> = out.iter().map(|e| e.event.name()).collect();
        assert_eq!(kinds, vec!["replaced", "filled"], "the new price crosses the first level");
        assert!(matches!(&out[1].event, OrderEvent::Filled(f) if f.quantity == Qty(100)));
        out.clear();
        // Down to what is filled: refused, the order keeps working.
        let down = Amendment { quantity: Qty(100), ..a };
        m.on_replace(1, &down, &mut book, t0, &mut out);
        assert!(matches!(&out[0].event, OrderEvent::ReplaceRejected { .. }));
        assert_eq!(m.working_orders().len(), 1);
        out.clear();
        m.on_replace(9, &a, &mut book, t0, &mut out);
        assert!(matches!(&out[0].event, OrderEvent::ReplaceRejected { .. }), "unknown order");
    }
}
