//! Live strategies: each configured instance runs on its own task, fed from the bus (trades, quotes, books of its
//! symbols) and the Order Manager's updates (its orders and fills), with the wall clock injected like everywhere
//! else. Its orders go through the same validation, risk checks and kill switch as anyone's, tagged
//! `source = strategy:<instance>` and booked to its account.
//!
//! A strategy that panics is stopped and reported (`failed`, with the panic's message); the process and the other
//! strategies carry on. A per-strategy `max_loss` stops it when its own P&L (realized + unrealized at the last
//! price it saw, before costs) falls to −max_loss; its working orders are then canceled.

use crate::api::{BookView, Context, QuoteTick, Refusal, SignalEvent, Strategy, TradeTick};
use crate::kinds::{self, BuildError};
use crate::params::Params;
use bus::{Bus, Event};
use chrono::{DateTime, Utc};
use clock::SharedClock;
use domain::order::{Order, OrderId, OrderRequest, Side};
use domain::{Instrument, Money, Position, Price, Qty, Symbol};
use order_manager::{Actor, OmsError, OmsUpdate, OrderManager};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use tokio::sync::{broadcast, oneshot};

/// One `[[strategies]]` entry of the configuration (or a `POST /api/v1/strategies` body).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// The instance's name: unique, `[a-z0-9_-]`, 1 to 40 characters.
    pub name: String,
    /// The registry's strategy (`sma_cross`, `breakout`, ...).
    pub kind: String,
    pub symbols: Vec<String>,
    #[serde(default)]
    pub params: Params,
    /// The account its orders are booked to; default `strategy-<name>`.
    #[serde(default)]
    pub account: Option<String>,
    /// Started with the server.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// In R$: the strategy stops when its P&L reaches −max_loss.
    #[serde(default)]
    pub max_loss: Option<Money>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    Running,
    Stopped,
    Failed,
}

/// What the API shows of an instance.
#[derive(Debug, Clone, Serialize)]
pub struct LiveStatus {
    pub name: String,
    pub kind: String,
    pub symbols: Vec<String>,
    pub params: Params,
    pub account: String,
    pub max_loss: Option<Money>,
    pub state: LiveState,
    pub started_at: Option<DateTime<Utc>>,
    pub orders: u64,
    pub refused: u64,
    pub fills: u64,
    /// Its own positions (from its fills), signed.
    pub positions: BTreeMap<String, Qty>,
    /// Realized + unrealized at the last prices it saw, before costs.
    pub pnl: Money,
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{0}")]
    Invalid(String),
    #[error("strategy {0:?} not found")]
    NotFound(String),
    #[error("strategy {0:?} already exists")]
    Exists(String),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Makes a fresh strategy at each start: for strategies that are not in the registry (an embedding program's own).
pub type Factory = Arc<dyn Fn() -> Box<dyn Strategy> + Send + Sync>;

struct Instance {
    cfg: LiveConfig,
    factory: Option<Factory>,
    /// Which run is current: a run stopped and started again must not have the old task, finishing late, cancel
    /// the new run's orders or write its state.
    generation: Arc<std::sync::atomic::AtomicU64>,
    symbols: Vec<Symbol>,
    status: Arc<Mutex<LiveStatus>>,
    stop: Option<oneshot::Sender<()>>,
}

/// Every live strategy of the process.
#[derive(Clone)]
pub struct LiveStrategies {
    instances: Arc<Mutex<BTreeMap<String, Instance>>>,
    oms: OrderManager,
    bus: Bus,
    clock: SharedClock,
    /// Set by [`LiveStrategies::inline_trades`]: the runs Data Capture's thread feeds trades to.
    inline: Option<Arc<Mutex<Vec<InlineRun>>>>,
}

fn check_name(name: &str) -> Result<(), LiveError> {
    let ok = (1..=40).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(LiveError::Invalid(format!("name {name:?}: 1 to 40 of a-z, 0-9, _ and -")))
    }
}

impl LiveStrategies {
    pub fn new(oms: OrderManager, bus: Bus, clock: SharedClock) -> LiveStrategies {
        LiveStrategies { instances: Default::default(), oms, bus, clock, inline: None }
    }

    /// Strategies get their trades on Data Capture's thread through the returned tap, as each is accepted, before
    /// the feed reads the next one (and after the taps before it, such as the replayed exchange's): an order a
    /// trade causes meets the market as that trade left it, as in a backtest, and a tick becomes an order without a
    /// task hand-off. Quotes, books, signals, order updates and timers still come through each run's task. Call
    /// before adding strategies, and give the tap to Data Capture when it starts (a replay starts at once: a tap
    /// added later would miss its first trades).
    pub fn inline_trades(mut self) -> (LiveStrategies, data_capture::TradeTap) {
        let runs: Arc<Mutex<Vec<InlineRun>>> = Default::default();
        let feed = runs.clone();
        let tap: data_capture::TradeTap = Arc::new(move |t: &market_data::Trade| {
            let live: Vec<InlineRun> = feed.lock().clone();
            for (state, wake) in live {
                let Some(state) = state.upgrade() else { continue };
                let mut st = state.lock();
                if st.done || st.error.is_some() {
                    continue;
                }
                if let Err(e) = st.trade(t).and_then(|_| st.after()) {
                    st.error = Some(e);
                    wake.notify_one();
                }
            }
        });
        self.inline = Some(runs);
        (self, tap)
    }

    /// Adds an instance (checked by building it) and starts it when `enabled`. Needs a Tokio runtime.
    pub fn add(&self, cfg: LiveConfig) -> Result<LiveStatus, LiveError> {
        self.add_with(cfg, None)
    }

    /// Adds an instance of a strategy made by `factory` (`cfg.kind` then only names it).
    pub fn add_custom(&self, cfg: LiveConfig, factory: Factory) -> Result<LiveStatus, LiveError> {
        self.add_with(cfg, Some(factory))
    }

    fn add_with(&self, cfg: LiveConfig, factory: Option<Factory>) -> Result<LiveStatus, LiveError> {
        check_name(&cfg.name)?;
        let mut symbols = Vec::new();
        for s in &cfg.symbols {
            let sym: Symbol =
                s.trim().to_ascii_uppercase().parse().map_err(|e| LiveError::Invalid(format!("symbol {s:?} {e}")))?;
            if self.oms.instruments().get(sym.as_str()).is_none() {
                return Err(LiveError::Invalid(format!("symbol {sym} is not a listed instrument")));
            }
            symbols.push(sym);
        }
        if let Some(m) = cfg.max_loss {
            if m.0 <= 0 {
                return Err(LiveError::Invalid("max_loss: a positive amount in R$".into()));
            }
        }
        if factory.is_none() {
            kinds::build(&cfg.kind, &symbols, &cfg.params)?;
        }
        let account = cfg.account.clone().unwrap_or_else(|| format!("strategy-{}", cfg.name));
        let status = LiveStatus {
            name: cfg.name.clone(),
            kind: cfg.kind.clone(),
            symbols: symbols.iter().map(|s| s.to_string()).collect(),
            params: cfg.params.clone(),
            account,
            max_loss: cfg.max_loss,
            state: LiveState::Stopped,
            started_at: None,
            orders: 0,
            refused: 0,
            fills: 0,
            positions: BTreeMap::new(),
            pnl: Money::ZERO,
            last_error: None,
        };
        let (name, enabled) = (cfg.name.clone(), cfg.enabled);
        {
            let mut all = self.instances.lock();
            if all.contains_key(&name) {
                return Err(LiveError::Exists(name));
            }
            let status = Arc::new(Mutex::new(status));
            let generation = Default::default();
            all.insert(name.clone(), Instance { cfg, factory, generation, symbols, status, stop: None });
        }
        if enabled {
            self.start(&name)
        } else {
            self.get(&name).ok_or(LiveError::NotFound(name))
        }
    }

    pub fn list(&self) -> Vec<LiveStatus> {
        self.instances.lock().values().map(|i| i.status.lock().clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<LiveStatus> {
        self.instances.lock().get(name).map(|i| i.status.lock().clone())
    }

    /// Starts a stopped (or failed) instance: a fresh strategy, fresh state; its own positions are rebuilt from
    /// its orders in the Order Manager.
    pub fn start(&self, name: &str) -> Result<LiveStatus, LiveError> {
        let mut all = self.instances.lock();
        let inst = all.get_mut(name).ok_or_else(|| LiveError::NotFound(name.to_string()))?;
        if inst.status.lock().state == LiveState::Running {
            return Ok(inst.status.lock().clone());
        }
        let strategy = match &inst.factory {
            Some(f) => f(),
            None => kinds::build(&inst.cfg.kind, &inst.symbols, &inst.cfg.params)?,
        };
        let (tx, rx) = oneshot::channel();
        inst.stop = Some(tx);
        {
            let mut st = inst.status.lock();
            st.state = LiveState::Running;
            st.started_at = Some(self.clock.now());
            st.last_error = None;
        }
        // Trades come from Data Capture's thread when inline, from the bus otherwise; signals from TP-Capital.
        let inline = self.inline.is_some();
        let subjects: Vec<String> = inst
            .symbols
            .iter()
            .flat_map(|s| {
                let trades = (!inline).then(|| bus::subjects::trades(s.as_str()));
                trades.into_iter().chain([bus::subjects::quotes(s.as_str()), bus::subjects::book(s.as_str())])
            })
            .chain([bus::subjects::SIGNALS.to_string()])
            .collect();
        let md = self.bus.subscribe_many(&subjects, 65_536).map_err(|e| LiveError::Invalid(e.to_string()))?;
        let ctx = LiveCtx::new(self.oms.clone(), self.clock.clone(), &inst.cfg, &inst.status, inst.symbols.clone());
        let run_id = inst.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let current = Current { generation: inst.generation.clone(), run_id };
        let bars = crate::bars::BarBuilder::new(strategy.symbols(), strategy.bar_intervals());
        let state =
            Arc::new(Mutex::new(RunState { strategy, ctx, bars, finished: Vec::new(), error: None, done: false }));
        let wake = Arc::new(tokio::sync::Notify::new());
        if let Some(runs) = &self.inline {
            let mut runs = runs.lock();
            runs.retain(|(w, _)| w.strong_count() > 0);
            runs.push((Arc::downgrade(&state), wake.clone()));
        }
        tokio::spawn(run(state, wake, md, self.oms.subscribe(), rx, current));
        let snapshot = inst.status.lock().clone();
        Ok(snapshot)
    }

    /// Stops an instance; its working orders are canceled.
    pub fn stop(&self, name: &str) -> Result<LiveStatus, LiveError> {
        let mut all = self.instances.lock();
        let inst = all.get_mut(name).ok_or_else(|| LiveError::NotFound(name.to_string()))?;
        if let Some(tx) = inst.stop.take() {
            let _ = tx.send(());
        }
        let mut st = inst.status.lock();
        if st.state == LiveState::Running {
            st.state = LiveState::Stopped;
        }
        Ok(st.clone())
    }
}

/// The strategy's `Context` live: the Order Manager, the wall clock, and the strategy's own books.
struct LiveCtx {
    oms: OrderManager,
    clock: SharedClock,
    actor: Actor,
    source: String,
    symbols: Vec<Symbol>,
    status: Arc<Mutex<LiveStatus>>,
    max_loss: Option<Money>,
    /// Its orders, with their side (fills on the update stream do not carry it).
    mine: HashMap<OrderId, Side>,
    /// Per symbol: what it asked for (accepted orders) less what is known not to fill (the unfilled rest of orders
    /// that ended): its position once every working order fills. Kept here, not read from the Order Manager,
    /// because fills reach this task after the Order Manager has booked them.
    committed: HashMap<Symbol, Qty>,
    /// Its orders already seen ending (an ended order's rest is taken out of `committed` once).
    ended: HashSet<OrderId>,
    /// Each working order's quantity as last seen: a confirmed modify moves `committed` by the difference.
    quantities: HashMap<OrderId, Qty>,
    positions: HashMap<Symbol, Position>,
    refusals: Vec<Refusal>,
    timers: BTreeMap<(DateTime<Utc>, u64), u64>,
    timer_seq: u64,
}

impl LiveCtx {
    fn new(
        oms: OrderManager,
        clock: SharedClock,
        cfg: &LiveConfig,
        status: &Arc<Mutex<LiveStatus>>,
        symbols: Vec<Symbol>,
    ) -> LiveCtx {
        let account = status.lock().account.clone();
        let mut ctx = LiveCtx {
            oms,
            clock,
            actor: Actor::new(account),
            source: format!("strategy:{}", cfg.name),
            symbols,
            status: status.clone(),
            max_loss: cfg.max_loss,
            mine: HashMap::new(),
            committed: HashMap::new(),
            ended: HashSet::new(),
            quantities: HashMap::new(),
            positions: HashMap::new(),
            refusals: Vec::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
        };
        ctx.rebuild();
        ctx
    }

    /// Its positions from its orders in the Order Manager (at start, and if the update stream lagged).
    fn rebuild(&mut self) {
        let filter = order_manager::OrderFilter { limit: usize::MAX, ..Default::default() };
        let (orders, _) = self.oms.list(&filter);
        self.positions.clear();
        self.committed.clear();
        self.ended.clear();
        self.quantities.clear();
        let mut fills = 0;
        let source = self.source.clone();
        for o in orders.iter().rev().filter(|o| o.source == source) {
            self.mine.insert(o.id, o.side);
            let q = if o.status.is_terminal() {
                self.ended.insert(o.id);
                o.filled_quantity
            } else {
                self.quantities.insert(o.id, o.quantity);
                o.quantity
            };
            *self.committed.entry(o.symbol).or_insert(Qty::ZERO) += q.signed(o.side);
            for f in &o.fills {
                self.book_fill(o.symbol, o.side, f.quantity, f.price);
                fills += 1;
            }
        }
        self.status.lock().fills = fills;
        self.publish();
    }

    fn book_fill(&mut self, symbol: Symbol, side: Side, qty: Qty, price: domain::Price) {
        let mult = self.oms.instruments().get(symbol.as_str()).map(|i| i.multiplier).unwrap_or(Money::from_brl(1));
        let p = self.positions.entry(symbol).or_insert_with(|| Position::new(symbol, mult));
        let _ = p.apply_fill(side, qty, price);
        if p.last_price.is_none() {
            p.last_price = Some(price);
        }
    }

    fn mark(&mut self, symbol: Symbol, price: domain::Price) {
        if let Some(p) = self.positions.get_mut(&symbol) {
            p.last_price = Some(price);
        }
    }

    fn own_pnl(&self) -> Money {
        self.positions.values().fold(Money::ZERO, |a, p| a + p.realized_total + p.unrealized().unwrap_or_default())
    }

    fn publish(&self) {
        let mut st = self.status.lock();
        st.positions = self.positions.iter().map(|(s, p)| (s.to_string(), p.quantity)).collect();
        st.pnl = self.own_pnl();
    }

    /// Whether the strategy lost its allowance.
    fn over_max_loss(&self) -> Option<String> {
        let limit = self.max_loss?;
        let pnl = self.own_pnl();
        (pnl.0 <= -limit.0).then(|| format!("max loss reached: P&L {pnl} against a limit of {limit}"))
    }
}

impl Context for LiveCtx {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn instrument(&self, symbol: &Symbol) -> Option<&Instrument> {
        self.oms.instruments().get(symbol.as_str())
    }

    fn position(&self, symbol: &Symbol) -> Qty {
        self.positions.get(symbol).map(|p| p.quantity).unwrap_or(Qty::ZERO)
    }

    fn open_orders(&self) -> Vec<Order> {
        self.oms.open_orders().into_iter().filter(|o| o.source == self.source).collect()
    }

    fn pnl(&self) -> Option<Money> {
        Some(self.own_pnl())
    }

    fn committed(&self, symbol: &Symbol) -> Qty {
        self.committed.get(symbol).copied().unwrap_or(Qty::ZERO)
    }

    fn submit(&mut self, mut req: OrderRequest) -> Result<OrderId, Refusal> {
        req.source = Some(self.source.clone());
        let coid = req.client_order_id.clone();
        self.status.lock().orders += 1;
        let refused = |e: &OmsError, id: Option<OrderId>| Refusal {
            order_id: id,
            client_order_id: coid.clone(),
            reason: e.to_string(),
        };
        let result = match self.oms.route(req, &self.actor) {
            Err(e) => Err(refused(&e, None)),
            Ok(routed) => match routed.outcome() {
                Ok(o) => {
                    self.mine.insert(o.id, o.side);
                    self.quantities.insert(o.id, o.quantity);
                    *self.committed.entry(o.symbol).or_insert(Qty::ZERO) += o.quantity.signed(o.side);
                    Ok(o.id)
                }
                Err(e @ OmsError::Risk { order, .. }) => Err(refused(e, Some(order.id))),
                Err(e) => Err(refused(e, None)),
            },
        };
        // The journal syncs in the background (the caller is the strategy, not a client waiting for an answer).
        self.oms.flush_soon();
        if let Err(r) = &result {
            self.status.lock().refused += 1;
            self.refusals.push(r.clone());
        }
        result
    }

    fn cancel(&mut self, id: OrderId) -> Result<(), Refusal> {
        if !self.mine.contains_key(&id) {
            return Err(Refusal {
                order_id: Some(id),
                client_order_id: None,
                reason: "not this strategy's order".into(),
            });
        }
        let (oms, actor) = (self.oms.clone(), self.actor.clone());
        tokio::spawn(async move {
            if let Err(e) = oms.cancel(id, &actor).await {
                tracing::info!(order_id = id, error = %e, "strategy cancel refused");
            }
        });
        Ok(())
    }

    fn modify(&mut self, id: OrderId, quantity: Option<Qty>, price: Option<Price>) -> Result<(), Refusal> {
        let refusal = |reason: String| Refusal { order_id: Some(id), client_order_id: None, reason };
        if !self.mine.contains_key(&id) {
            return Err(refusal("not this strategy's order".into()));
        }
        let change = order_manager::Modify { quantity, price, stop_price: None };
        match self.oms.modify_routed(id, change, &self.actor) {
            // `committed` follows when the broker confirms (the order's update shows the new quantity).
            Ok(_) => Ok(()),
            Err(e) => {
                let r = refusal(e.to_string());
                self.status.lock().refused += 1;
                self.refusals.push(r.clone());
                Err(r)
            }
        }
    }

    fn set_timer(&mut self, at: DateTime<Utc>, id: u64) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), id);
    }
}

/// A run's ticket: still the instance's current run, or superseded by a later start.
struct Current {
    generation: Arc<std::sync::atomic::AtomicU64>,
    run_id: u64,
}

impl Current {
    fn is_current(&self) -> bool {
        self.generation.load(std::sync::atomic::Ordering::SeqCst) == self.run_id
    }
}

/// Runs one callback; a panic becomes an error message.
fn guarded(f: impl FnOnce()) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
        format!("the strategy panicked: {}", msg.unwrap_or_else(|| "(no message)".into()))
    })
}

/// A run's strategy and its context. The run's task drives it (order updates, timers, quotes, books, signals and,
/// from the bus, trades); with inline trades, Data Capture's thread drives it too, under the same lock.
struct RunState {
    strategy: Box<dyn Strategy>,
    ctx: LiveCtx,
    bars: crate::bars::BarBuilder,
    finished: Vec<crate::api::BarEvent>,
    /// Why the run must end, found by the feed thread (a panic, the max loss); the task ends it.
    error: Option<String>,
    done: bool,
}

impl RunState {
    fn trade(&mut self, t: &market_data::Trade) -> Result<(), String> {
        if t.kind != market_data::TradeKind::New {
            return Ok(());
        }
        let Ok(symbol) = t.symbol.parse::<Symbol>() else { return Ok(()) };
        if !self.ctx.symbols.contains(&symbol) {
            return Ok(());
        }
        self.ctx.mark(symbol, t.price);
        let tick =
            TradeTick { symbol, price: t.price, quantity: t.quantity, aggressor: t.aggressor, ts: t.exchange_ts };
        let (strategy, ctx) = (&mut self.strategy, &mut self.ctx);
        // As in a backtest: the bar a trade finishes is delivered before the trade.
        if !self.bars.is_empty() {
            self.bars.on_trade(symbol, t.exchange_ts, t.price, t.quantity, &mut self.finished);
        }
        for bar in std::mem::take(&mut self.finished) {
            guarded(|| strategy.on_bar(ctx, &bar))?;
        }
        guarded(|| strategy.on_trade(ctx, &tick))?;
        ctx.publish();
        Ok(())
    }

    fn market(&mut self, event: &Event) -> Result<(), String> {
        let (strategy, ctx) = (&mut self.strategy, &mut self.ctx);
        match event {
            Event::Trade(t) => return self.trade(t),
            Event::Quote(q) => {
                let (Some(bid), Some(ask), Ok(symbol)) = (q.bid, q.ask, q.symbol.parse::<Symbol>()) else {
                    return Ok(());
                };
                let tick = QuoteTick {
                    symbol,
                    bid: bid.price,
                    bid_size: bid.quantity,
                    ask: ask.price,
                    ask_size: ask.quantity,
                    ts: q.ts,
                };
                guarded(|| strategy.on_quote(ctx, &tick))?;
            }
            Event::Signal { data } => {
                // Stored and updated signals both come by; strategies that trade them dedupe (`tp_signals` does).
                let Ok(signal) = SignalEvent::from_json(data) else { return Ok(()) };
                if ctx.symbols.contains(&signal.symbol) {
                    guarded(|| strategy.on_signal(ctx, &signal))?;
                }
            }
            Event::Book(b) => {
                let Ok(symbol) = b.symbol.parse::<Symbol>() else { return Ok(()) };
                let view = BookView { symbol, bids: &b.bids, asks: &b.asks, ts: b.ts };
                guarded(|| strategy.on_book(ctx, &view))?;
            }
            _ => {}
        }
        ctx.publish();
        Ok(())
    }

    fn update(&mut self, u: OmsUpdate) -> Result<(), String> {
        let (strategy, ctx) = (&mut self.strategy, &mut self.ctx);
        match u {
            OmsUpdate::Order(o) if ctx.mine.contains_key(&o.id) => {
                if let Some(known) = ctx.quantities.get_mut(&o.id) {
                    if *known != o.quantity {
                        // A confirmed modify: the strategy is committed to the new quantity.
                        *ctx.committed.entry(o.symbol).or_insert(Qty::ZERO) += (o.quantity - *known).signed(o.side);
                        *known = o.quantity;
                    }
                }
                if o.status.is_terminal() && ctx.ended.insert(o.id) {
                    ctx.quantities.remove(&o.id);
                    // The part that will never fill is no longer committed.
                    let rest = (o.quantity - o.filled_quantity).signed(o.side);
                    *ctx.committed.entry(o.symbol).or_insert(Qty::ZERO) -= rest;
                }
                guarded(|| strategy.on_order(ctx, &o))?;
            }
            OmsUpdate::Fill { order_id, symbol, fill } => {
                let Some(side) = ctx.mine.get(&order_id).copied() else { return Ok(()) };
                ctx.book_fill(symbol, side, fill.quantity, fill.price);
                ctx.status.lock().fills += 1;
                ctx.publish();
                if let Some(order) = ctx.oms.get(order_id) {
                    guarded(|| strategy.on_fill(ctx, &order, &fill))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn timer(&mut self) -> Result<(), String> {
        let (strategy, ctx) = (&mut self.strategy, &mut self.ctx);
        if let Some((_, id)) = ctx.timers.pop_first() {
            guarded(|| strategy.on_timer(ctx, id))?;
        }
        Ok(())
    }

    /// After each callback: refusals are delivered as events, and the max loss is checked.
    fn after(&mut self) -> Result<(), String> {
        let (strategy, ctx) = (&mut self.strategy, &mut self.ctx);
        for r in std::mem::take(&mut ctx.refusals) {
            guarded(|| strategy.on_refused(ctx, &r))?;
        }
        match ctx.over_max_loss() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

/// What the feed thread needs to reach a run: its state, and how to wake its task.
type InlineRun = (std::sync::Weak<Mutex<RunState>>, Arc<tokio::sync::Notify>);

async fn run(
    state: Arc<Mutex<RunState>>,
    wake: Arc<tokio::sync::Notify>,
    mut md: bus::Subscription,
    mut updates: broadcast::Receiver<OmsUpdate>,
    mut stop: oneshot::Receiver<()>,
    current: Current,
) {
    let outcome: Result<(), String> = async {
        {
            let mut st = state.lock();
            let RunState { strategy, ctx, .. } = &mut *st;
            guarded(|| strategy.on_start(ctx))?;
        }
        loop {
            let wait = {
                let mut st = state.lock();
                if let Some(e) = st.error.take() {
                    return Err(e);
                }
                st.after()?;
                let next_timer = st.ctx.timers.keys().next().map(|(at, _)| *at);
                next_timer.map(|at| (at - st.ctx.clock.now()).to_std().unwrap_or_default())
            };
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = wake.notified() => {}
                _ = async { match wait { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => {
                    state.lock().timer()?;
                }
                d = md.recv() => {
                    let Some(d) = d else { return Err("the market data stream ended".into()) };
                    state.lock().market(&d.event)?;
                }
                u = updates.recv() => match u {
                    Ok(u) => state.lock().update(u)?,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let mut st = state.lock();
                        tracing::warn!(strategy = %st.ctx.source, missed = n, "strategy fell behind the order updates; rebuilding its positions");
                        st.ctx.rebuild();
                    }
                    Err(broadcast::error::RecvError::Closed) => return Err("the Order Manager stopped".into()),
                }
            }
        }
    }
    .await;
    let (oms, actor, source, status) = {
        let mut st = state.lock();
        st.done = true;
        (st.ctx.oms.clone(), st.ctx.actor.clone(), st.ctx.source.clone(), st.ctx.status.clone())
    };
    if !current.is_current() {
        // Started again meanwhile: the new run owns the orders and the status.
        return;
    }
    cancel_working(&oms, &actor, &source).await;
    state.lock().ctx.publish();
    let mut st = status.lock();
    match outcome {
        Ok(()) => st.state = LiveState::Stopped,
        Err(e) => {
            tracing::error!(strategy = %source, error = %e, "strategy stopped");
            st.state = if e.starts_with("max loss") { LiveState::Stopped } else { LiveState::Failed };
            st.last_error = Some(e);
        }
    }
}

async fn cancel_working(oms: &OrderManager, actor: &Actor, source: &str) {
    for o in oms.open_orders().into_iter().filter(|o| o.source == source) {
        if let Err(e) = oms.cancel(o.id, actor).await {
            tracing::warn!(order_id = o.id, error = %e, "could not cancel a stopped strategy's order");
        }
    }
}
