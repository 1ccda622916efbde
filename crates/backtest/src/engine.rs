//! The event loop: one thread, events in timestamp order, the simulated clock moved to each event's time before
//! anything reads it. Per event: actions that came due (orders reaching the venue, venue reports reaching us,
//! timers), the trading-day roll, the venue's view of the market and the matcher's reaction to it, the books' mark,
//! then the strategy. The strategy only ever sees the event at hand and the state up to its time: nothing stamped
//! later exists yet (the no-look-ahead test tries).
//!
//! Orders go through the real Order Manager (validation, risk, journal in memory, positions) and reach the paper
//! broker's matching rules after the order → exchange latency; what the venue reports reaches the Order Manager and
//! the strategy after the exchange → us latency. With both zero, an order placed on an event is matched against the
//! market as of that event, before the next one.

use crate::costs::CostModel;
use crate::event::{Body, Event, SymbolIdx};
use crate::ledger::Ledger;
use crate::source::{trading_date_of, SymbolTable};
use crate::venue::Venue;
use chrono::{DateTime, Utc};
use clock::SimClock;
use domain::broker::{Broker, BrokerConnection, BrokerError, BrokerEvent, BrokerOrderSnapshot, LinkState};
use domain::calendar::TradingCalendar;
use domain::order::{Amendment, Order, OrderEvent, OrderId, OrderRequest};
use domain::{Instrument, Instruments, Money, Price, Qty, Symbol};
use order_manager::{Actor, Modify, OmsError, OrderManager};
use paper_broker::matching::{Matcher, Print};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use strategy::api::{BarEvent, BookView, Context, QuoteTick, Refusal, Strategy, TradeTick};
use strategy::bars::BarBuilder;

/// Delays applied in simulated time, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Latency {
    /// From the strategy's submit or cancel to the venue.
    pub to_venue_us: u64,
    /// From the venue's report (acknowledgement, fill) to the Order Manager and the strategy.
    pub to_us_us: u64,
}

/// Everything about a run except the data and the strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub capital: Money,
    /// Ticks added against a market order filled at the touch or the last price (no replayed book).
    pub slippage_ticks: i64,
    /// Resting limits also fill at the touch, behind the quantity displayed at their price when they arrived.
    pub queue_position: bool,
    pub latency: Latency,
    pub costs: CostModel,
    /// Annual CDI rate for the Sharpe ratio over the risk-free rate (0.1065 is 10.65 %).
    pub cdi: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            capital: Money::from_brl(100_000),
            slippage_ticks: 0,
            queue_position: false,
            latency: Latency::default(),
            costs: CostModel::default(),
            cdi: 0.0,
        }
    }
}

enum VenueCmd {
    New(Box<Order>),
    Cancel(OrderId),
    Replace(OrderId, Amendment),
}

/// The Order Manager's broker in a backtest: it only queues what the Order Manager sends; the engine delivers it to
/// the venue after the latency.
struct VenueLink(Arc<Mutex<Vec<VenueCmd>>>);

impl Broker for VenueLink {
    fn name(&self) -> &'static str {
        "backtest"
    }
    fn connection(&self) -> BrokerConnection {
        let c = LinkState::Connected;
        BrokerConnection { login: c, routing: c, market_data: c }
    }
    fn submit(&self, order: &Order) -> Result<(), BrokerError> {
        self.0.lock().push(VenueCmd::New(Box::new(order.clone())));
        Ok(())
    }
    fn cancel(&self, order_id: OrderId) -> Result<(), BrokerError> {
        self.0.lock().push(VenueCmd::Cancel(order_id));
        Ok(())
    }
    fn replace(&self, order: &Order, amendment: &Amendment) -> Result<(), BrokerError> {
        self.0.lock().push(VenueCmd::Replace(order.id, *amendment));
        Ok(())
    }
    fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
        Vec::new()
    }
}

enum Action {
    Arrive(Box<Order>),
    CancelAtVenue(OrderId),
    ReplaceAtVenue(OrderId, Amendment),
    Deliver(Vec<BrokerEvent>),
    Refused(Refusal),
    Timer(u64),
}

struct Scheduled {
    due: i64,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// How often (simulated time) a position's mark is passed to the Order Manager for its daily-loss check, besides
/// before every order and at every fill: marking on every quote would cost more than the rest of the event.
const OMS_MARK_EVERY_NS: i64 = 1_000_000_000;

/// What the strategy's [`Context`] reads and acts on.
pub struct Core {
    clock: Arc<SimClock>,
    now: i64,
    table: SymbolTable,
    instruments: Instruments,
    oms: OrderManager,
    outbox: Arc<Mutex<Vec<VenueCmd>>>,
    actor: Actor,
    source_tag: String,
    venue: Venue,
    matcher: Matcher,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    latency_venue_ns: i64,
    latency_us_ns: i64,
    pub(crate) ledger: Ledger,
    broker_events: Vec<BrokerEvent>,
    next_day_ns: i64,
    calendar: TradingCalendar,
    oms_marked_at: Vec<i64>,
    pub(crate) refusals: u64,
    pub(crate) orders: u64,
    day: std::cell::Cell<UtcDay>,
}

/// The UTC day of the last timestamp turned into a `DateTime`: building one from nanoseconds costs a calendar
/// computation, and every event needs one, nearly always on the same day as the last.
#[derive(Debug, Clone, Copy)]
struct UtcDay {
    start: i64,
    date: chrono::NaiveDate,
}

const DAY_NS: i64 = 86_400_000_000_000;

impl Core {
    fn datetime(&self, ts: i64) -> DateTime<Utc> {
        let mut d = self.day.get();
        if ts < d.start || ts >= d.start + DAY_NS {
            let days = ts.div_euclid(DAY_NS);
            let Some(date) = i32::try_from(days + 719_163).ok().and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
            else {
                return clock::from_nanos(ts);
            };
            d = UtcDay { start: days * DAY_NS, date };
            self.day.set(d);
        }
        let in_day = ts - d.start;
        let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
            (in_day / 1_000_000_000) as u32,
            (in_day % 1_000_000_000) as u32,
        );
        match time {
            Some(t) => d.date.and_time(t).and_utc(),
            None => clock::from_nanos(ts),
        }
    }

    fn schedule(&mut self, due: i64, action: Action) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { due, seq: self.seq, action }));
    }

    /// Moves what the Order Manager sent to the broker onto the way to the venue.
    fn drain_outbox(&mut self) {
        let cmds = std::mem::take(&mut *self.outbox.lock());
        let due = self.now + self.latency_venue_ns;
        for c in cmds {
            let action = match c {
                VenueCmd::New(o) => Action::Arrive(o),
                VenueCmd::Cancel(id) => Action::CancelAtVenue(id),
                VenueCmd::Replace(id, a) => Action::ReplaceAtVenue(id, a),
            };
            self.schedule(due, action);
        }
    }

    /// Sends what the venue reported on its way back to us.
    fn report(&mut self) {
        if self.broker_events.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.broker_events);
        let due = self.now + self.latency_us_ns;
        self.schedule(due, Action::Deliver(events));
    }

    fn set_now(&mut self, ts: i64) {
        if ts > self.now {
            self.now = ts;
            self.clock.advance_to_nanos(ts);
        }
    }

    fn refuse(&mut self, order_id: Option<OrderId>, client_order_id: Option<String>, e: &OmsError) -> Refusal {
        self.refusals += 1;
        let r = Refusal { order_id, client_order_id, reason: e.to_string() };
        self.schedule(self.now, Action::Refused(r.clone()));
        r
    }
}

impl Context for Core {
    fn now(&self) -> DateTime<Utc> {
        self.datetime(self.now)
    }

    fn instrument(&self, symbol: &Symbol) -> Option<&Instrument> {
        self.instruments.get(symbol.as_str())
    }

    fn position(&self, symbol: &Symbol) -> Qty {
        self.table.index(symbol.as_str()).map(|i| self.ledger.position(i)).unwrap_or(Qty::ZERO)
    }

    fn open_orders(&self) -> Vec<Order> {
        self.oms.open_orders()
    }

    fn pnl(&self) -> Option<Money> {
        Some(self.ledger.pnl())
    }

    fn submit(&mut self, mut req: OrderRequest) -> Result<OrderId, Refusal> {
        if req.source.is_none() {
            req.source = Some(self.source_tag.clone());
        }
        // The Order Manager's reference price (market orders' notional, price bands) is the market at this event.
        if let Some(i) = self.table.index(req.symbol.as_str()) {
            if let Some(mark) = self.venue.mark(i) {
                self.oms.on_market_trade(req.symbol.as_str(), mark);
            }
        }
        let coid = req.client_order_id.clone();
        self.orders += 1;
        match self.oms.route(req, &self.actor) {
            Err(e) => Err(self.refuse(None, coid, &e)),
            Ok(routed) => match routed.outcome() {
                Ok(order) => {
                    let id = order.id;
                    self.drain_outbox();
                    Ok(id)
                }
                Err(e) => {
                    let id = match e {
                        OmsError::Risk { order, .. } => Some(order.id),
                        _ => None,
                    };
                    Err(self.refuse(id, coid, e))
                }
            },
        }
    }

    fn cancel(&mut self, id: OrderId) -> Result<(), Refusal> {
        match self.oms.cancel_inline(id, &self.actor) {
            Ok(_) => {
                self.drain_outbox();
                Ok(())
            }
            Err(e) => Err(Refusal { order_id: Some(id), client_order_id: None, reason: e.to_string() }),
        }
    }

    fn modify(&mut self, id: OrderId, quantity: Option<Qty>, price: Option<Price>) -> Result<(), Refusal> {
        let change = Modify { quantity, price, stop_price: None };
        match self.oms.modify_routed(id, change, &self.actor) {
            Ok(_) => {
                self.drain_outbox();
                Ok(())
            }
            Err(e) => Err(Refusal { order_id: Some(id), client_order_id: None, reason: e.to_string() }),
        }
    }

    fn set_timer(&mut self, at: DateTime<Utc>, id: u64) {
        let due = clock::to_nanos(at).max(self.now);
        self.schedule(due, Action::Timer(id));
    }
}

/// A strategy, the venue and the books, driven by events.
pub struct Engine {
    core: Core,
    strategy: Box<dyn Strategy>,
    bars: BarBuilder,
    finished_bars: Vec<BarEvent>,
    started: bool,
    pub(crate) last_ts: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("unknown symbol {0}: not a listed instrument, nor a B3 stock, ETF, WIN or WDO code")]
    UnknownSymbol(String),
    #[error("{0}")]
    Oms(String),
}

/// The instrument for `symbol`: the built-in list, else one shaped like it (a B3 stock code `ABCD3`/`ABCD4`, a
/// unit or ETF `ABCD11`, a WIN or WDO contract of another month).
pub fn instrument_for(symbol: &Symbol, date: chrono::NaiveDate) -> Option<Instrument> {
    let defaults = Instruments::b3_defaults(date);
    if let Some(i) = defaults.get(symbol.as_str()) {
        return Some(i.clone());
    }
    let s = symbol.as_str();
    let like = |root: &str| defaults.iter().find(|i| i.symbol.as_str().starts_with(root)).cloned();
    if s.len() == 6 && (s.starts_with("WIN") || s.starts_with("WDO")) {
        let month = s.as_bytes()[3] as char;
        let year_ok = s[4..].bytes().all(|b| b.is_ascii_digit());
        if domain::instrument::MONTH_CODES.contains(&month) && year_ok {
            return like(&s[..3]).map(|i| Instrument { symbol: *symbol, ..i });
        }
        return None;
    }
    let (letters, digits) = s.split_at(s.len().min(4));
    if letters.len() == 4
        && letters.bytes().all(|b| b.is_ascii_uppercase())
        && !digits.is_empty()
        && digits.len() <= 2
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        let base = like("PETR4")?;
        let etf = digits == "11";
        return Some(Instrument {
            symbol: *symbol,
            kind: if etf { domain::InstrumentKind::Etf } else { domain::InstrumentKind::Stock },
            lot: if etf { Qty(1) } else { base.lot },
            description: String::new(),
            ..base
        });
    }
    None
}

impl Engine {
    /// An engine whose clock starts at `start_ts` (the first event's time).
    pub fn new(
        strategy: Box<dyn Strategy>,
        table: SymbolTable,
        settings: &Settings,
        calendar: TradingCalendar,
        start_ts: i64,
    ) -> Result<Engine, EngineError> {
        let start = clock::from_nanos(start_ts);
        let date = trading_date_of(start_ts);
        let mut list = Vec::new();
        for s in table.symbols() {
            list.push(instrument_for(s, date).ok_or_else(|| EngineError::UnknownSymbol(s.to_string()))?);
        }
        let instruments = Instruments::new(list.clone());
        let clock = SimClock::new(start);
        let oms = OrderManager::in_memory(instruments.clone(), calendar.clone(), clock.clone());
        let outbox = Arc::new(Mutex::new(Vec::new()));
        oms.attach_broker_inline(Arc::new(VenueLink(outbox.clone()))).map_err(|e| EngineError::Oms(e.to_string()))?;
        let bars = BarBuilder::new(strategy.symbols(), strategy.bar_intervals());
        let n = table.symbols().len();
        let core = Core {
            clock,
            now: start_ts,
            venue: Venue::new(table.clone(), &list, settings.slippage_ticks),
            table,
            instruments,
            oms,
            outbox,
            actor: Actor::new("backtest"),
            source_tag: format!("strategy:{}", strategy.name()),
            matcher: Matcher::new(calendar.clone(), start).with_queue_estimate(settings.queue_position),
            queue: BinaryHeap::new(),
            seq: 0,
            latency_venue_ns: (settings.latency.to_venue_us as i64).saturating_mul(1000),
            latency_us_ns: (settings.latency.to_us_us as i64).saturating_mul(1000),
            ledger: Ledger::new(settings.capital, &list, settings.costs.clone()),
            broker_events: Vec::new(),
            next_day_ns: i64::MIN,
            calendar,
            oms_marked_at: vec![i64::MIN; n],
            refusals: 0,
            orders: 0,
            day: std::cell::Cell::new(UtcDay { start: i64::MIN / 2, date: chrono::NaiveDate::MIN }),
        };
        Ok(Engine { core, strategy, bars, finished_bars: Vec::new(), started: false, last_ts: start_ts })
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Processes one market event.
    #[inline]
    pub fn on_event(&mut self, e: &Event) {
        if !self.started {
            self.started = true;
            self.strategy.on_start(&mut self.core);
        }
        self.run_due(e.ts);
        if e.ts >= self.core.next_day_ns {
            self.roll_day(e.ts);
        }
        self.core.set_now(e.ts);
        self.last_ts = e.ts;
        let sym = e.sym;
        let symbol = self.core.table.symbol(sym);
        match &e.body {
            Body::Trade { price, quantity, aggressor } => {
                self.core.venue.on_trade(sym, *price);
                if !self.core.matcher.is_empty() {
                    let print = Print { symbol, price: *price, quantity: *quantity, ours: false, ts: self.core.now() };
                    let c = &mut self.core;
                    c.matcher.on_print(&print, &mut c.venue, &mut c.broker_events);
                    c.report();
                }
                self.mark(e.ts, sym, Some(*price));
                if !self.bars.is_empty() {
                    self.on_bar_trade(e.ts, sym, *price, *quantity);
                }
                let t = TradeTick {
                    symbol,
                    price: *price,
                    quantity: *quantity,
                    aggressor: *aggressor,
                    ts: self.core.now(),
                };
                self.strategy.on_trade(&mut self.core, &t);
            }
            Body::Quote { bid, ask } => {
                self.core.venue.on_quote(sym, *bid, *ask);
                self.after_book_change(symbol);
                let mark = self.core.venue.mark(sym);
                self.mark(e.ts, sym, mark);
                if bid.quantity.is_positive() && ask.quantity.is_positive() {
                    let q = QuoteTick {
                        symbol,
                        bid: bid.price,
                        bid_size: bid.quantity,
                        ask: ask.price,
                        ask_size: ask.quantity,
                        ts: self.core.now(),
                    };
                    self.strategy.on_quote(&mut self.core, &q);
                }
            }
            Body::Signal(signal) => {
                self.strategy.on_signal(&mut self.core, signal);
            }
            Body::Book(levels) => {
                self.core.venue.on_book(sym, levels);
                self.after_book_change(symbol);
                let mark = self.core.venue.mark(sym);
                self.mark(e.ts, sym, mark);
                let view = BookView { symbol, bids: &levels.bids, asks: &levels.asks, ts: self.core.now() };
                self.strategy.on_book(&mut self.core, &view);
            }
        }
    }

    fn after_book_change(&mut self, symbol: Symbol) {
        if self.core.matcher.is_empty() {
            return;
        }
        let now = self.core.now();
        let c = &mut self.core;
        c.matcher.on_market_change(&symbol, &mut c.venue, now, &mut c.broker_events);
        c.report();
    }

    #[inline]
    fn mark(&mut self, ts: i64, sym: SymbolIdx, mark: Option<domain::Price>) {
        let c = &mut self.core;
        c.ledger.on_event(ts, sym, mark);
        if let Some(m) = mark {
            let i = usize::from(sym);
            if !c.ledger.position(sym).is_zero() && ts.saturating_sub(c.oms_marked_at[i]) >= OMS_MARK_EVERY_NS {
                c.oms_marked_at[i] = ts;
                c.oms.on_market_trade(c.table.symbol(sym).as_str(), m);
            }
        }
    }

    fn on_bar_trade(&mut self, ts: i64, sym: SymbolIdx, price: domain::Price, qty: Qty) {
        let symbol = self.core.table.symbol(sym);
        self.bars.on_trade(symbol, self.core.datetime(ts), price, qty, &mut self.finished_bars);
        for ev in std::mem::take(&mut self.finished_bars) {
            self.strategy.on_bar(&mut self.core, &ev);
        }
    }

    fn roll_day(&mut self, ts: i64) {
        let c = &mut self.core;
        c.set_now(ts);
        let now = c.now();
        c.ledger.roll_to(trading_date_of(ts));
        c.matcher.on_time(now, &mut c.broker_events);
        c.report();
        c.next_day_ns = clock::to_nanos(c.calendar.next_date_change(now));
    }

    /// Runs every action due at or before `until`, each at its own time.
    fn run_due(&mut self, until: i64) {
        while self.core.queue.peek().is_some_and(|Reverse(s)| s.due <= until) {
            let Some(Reverse(s)) = self.core.queue.pop() else { break };
            if s.due >= self.core.next_day_ns {
                self.roll_day(s.due);
            }
            self.core.set_now(s.due);
            self.run_action(s.action);
        }
    }

    fn run_action(&mut self, action: Action) {
        let c = &mut self.core;
        match action {
            Action::Arrive(order) => {
                let now = c.now();
                c.matcher.on_new(&order, &mut c.venue, now, &mut c.broker_events);
                c.report();
            }
            Action::CancelAtVenue(id) => {
                let now = c.now();
                c.matcher.on_cancel(id, now, &mut c.broker_events);
                c.report();
            }
            Action::ReplaceAtVenue(id, a) => {
                let now = c.now();
                c.matcher.on_replace(id, &a, &mut c.venue, now, &mut c.broker_events);
                c.report();
            }
            Action::Deliver(events) => {
                c.oms.on_broker_events(events.iter().cloned());
                for ev in &events {
                    let Some(order) = self.core.oms.get(ev.order_id) else { continue };
                    if let OrderEvent::Filled(fill) = &ev.event {
                        if let Some(sym) = self.core.table.index(order.symbol.as_str()) {
                            let now = self.core.now;
                            self.core.ledger.on_fill(order.id, now, sym, order.side, fill.quantity, fill.price);
                            // A fill moves the P&L the daily-loss check reads.
                            self.core.oms.on_market_trade(order.symbol.as_str(), fill.price);
                        }
                        self.strategy.on_fill(&mut self.core, &order, fill);
                    }
                    self.strategy.on_order(&mut self.core, &order);
                }
            }
            Action::Refused(r) => self.strategy.on_refused(&mut self.core, &r),
            Action::Timer(id) => self.strategy.on_timer(&mut self.core, id),
        }
    }

    /// The end of the data: what is already on its way to or from the venue arrives; timers set beyond the data do
    /// not fire. The last day is settled.
    pub fn finish(&mut self) {
        loop {
            let next = self
                .core
                .queue
                .iter()
                .filter(|Reverse(s)| !matches!(s.action, Action::Timer(_)) || s.due <= self.last_ts)
                .map(|Reverse(s)| s.due)
                .min();
            match next {
                Some(due) => self.run_due(due),
                None => break,
            }
        }
        self.core.ledger.finish();
    }

    pub fn ledger(&self) -> &Ledger {
        &self.core.ledger
    }

    pub fn strategy_name(&self) -> &str {
        self.strategy.name()
    }

    /// The books and every order of the run (oldest first), once it is finished.
    pub fn into_results(self) -> Results {
        let filter = order_manager::OrderFilter { limit: usize::MAX, ..Default::default() };
        let (mut orders, _) = self.core.oms.list(&filter);
        orders.reverse();
        let ks = self.core.oms.kill_switch();
        let kill_switch = ks.active.then(|| {
            let since = ks.since.map(|t| t.to_rfc3339()).unwrap_or_default();
            format!("the kill switch was activated at {since}: {}", ks.reason.unwrap_or_default())
        });
        Results {
            ledger: self.core.ledger,
            orders,
            submitted: self.core.orders,
            refused: self.core.refusals,
            kill_switch,
        }
    }
}

pub struct Results {
    /// The Order Manager's kill switch was on at the end (its daily loss limit, in a backtest): why.
    pub kill_switch: Option<String>,
    pub ledger: Ledger,
    pub orders: Vec<Order>,
    /// Orders the strategy submitted, and how many of them validation or risk refused.
    pub submitted: u64,
    pub refused: u64,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cached_day_gives_the_same_datetime_as_chrono() {
        let strategy = strategy::kinds::build("noop", &[domain::Symbol::lit("PETR4")], &Default::default()).unwrap();
        let table = super::SymbolTable::new(&[domain::Symbol::lit("PETR4")]).unwrap();
        let t0 = 1_741_615_200_123_456_789i64;
        let e =
            super::Engine::new(strategy, table, &Default::default(), domain::calendar::TradingCalendar::Continuous, t0)
                .unwrap();
        for ts in [t0, t0 + 1, t0 + super::DAY_NS, t0 - super::DAY_NS, 0, -1, t0 + 7_000_000_000_000] {
            assert_eq!(e.core.datetime(ts), clock::from_nanos(ts), "{ts}");
        }
    }
}
