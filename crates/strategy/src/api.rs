//! The strategy API: what a strategy sees and what it may do. The same strategy runs in a backtest (the engine
//! implements [`Context`] over an in-memory Order Manager and the simulated venue, at the data's time) and live
//! (over the real Order Manager and the wall clock): it cannot tell which, which is the point.
//!
//! Callbacks receive the context; orders go through it to the Order Manager, so they meet the same validation and
//! risk checks as the API's. A refused order is answered twice: `submit` returns the refusal, and
//! [`Strategy::on_refused`] reports it as an event (for strategies that only react to events).

use chrono::{DateTime, Utc};
use domain::order::{Fill, Order, OrderId, OrderRequest};
use domain::{Instrument, Money, Price, Qty, Symbol};
pub use market_data::{Aggressor, Bar, Interval, Level};

/// A trade on the tape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TradeTick {
    pub symbol: Symbol,
    pub price: Price,
    pub quantity: Qty,
    pub aggressor: Aggressor,
    pub ts: DateTime<Utc>,
}

/// The top of the book.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuoteTick {
    pub symbol: Symbol,
    pub bid: Price,
    pub bid_size: Qty,
    pub ask: Price,
    pub ask_size: Qty,
    pub ts: DateTime<Utc>,
}

impl QuoteTick {
    /// The mid price as a number (for indicators; never for an order's price).
    pub fn mid(&self) -> f64 {
        (self.bid.to_f64() + self.ask.to_f64()) / 2.0
    }
}

/// The L2 book, best level first on each side.
#[derive(Debug, Clone, Copy)]
pub struct BookView<'a> {
    pub symbol: Symbol,
    pub bids: &'a [Level],
    pub asks: &'a [Level],
    pub ts: DateTime<Utc>,
}

/// A finished bar of one of the intervals the strategy asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BarEvent {
    pub symbol: Symbol,
    pub interval: Interval,
    pub bar: Bar,
}

/// A trading signal (TP-Capital's, as the API and the bus show it): buy or sell `symbol` in the entry range, with
/// its stop and targets. Read from the signal's JSON (`id`, `asset`, `side`, `buy_min`, `buy_max`, `stop`,
/// `targets`, `ts`; other fields are ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalEvent {
    pub id: i64,
    pub symbol: Symbol,
    pub side: domain::order::Side,
    pub buy_min: Option<Price>,
    pub buy_max: Option<Price>,
    pub stop: Option<Price>,
    pub targets: Vec<Price>,
    pub ts: DateTime<Utc>,
}

#[derive(serde::Deserialize)]
struct SignalJson {
    id: i64,
    asset: String,
    side: domain::order::Side,
    #[serde(default)]
    buy_min: Option<Price>,
    #[serde(default)]
    buy_max: Option<Price>,
    #[serde(default)]
    stop: Option<Price>,
    #[serde(default)]
    targets: Vec<Price>,
    ts: DateTime<Utc>,
}

impl SignalEvent {
    pub fn from_json(v: &serde_json::Value) -> Result<SignalEvent, String> {
        let j: SignalJson = serde_json::from_value(v.clone()).map_err(|e| format!("not a signal: {e}"))?;
        let symbol =
            j.asset.trim().to_ascii_uppercase().parse::<Symbol>().map_err(|e| format!("asset {:?} {e}", j.asset))?;
        Ok(SignalEvent {
            id: j.id,
            symbol,
            side: j.side,
            buy_min: j.buy_min,
            buy_max: j.buy_max,
            stop: j.stop,
            targets: j.targets,
            ts: j.ts,
        })
    }
}

/// Why an order of the strategy was not accepted: invalid (no order exists) or refused by risk (the order exists,
/// REJECTED, with the check that decided).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub order_id: Option<OrderId>,
    pub client_order_id: Option<String>,
    pub reason: String,
}

/// What a strategy reads and does. Implemented by the backtest engine and by the live runner.
pub trait Context {
    /// The clock of the run: the data's time in a backtest, the wall clock live.
    fn now(&self) -> DateTime<Utc>;

    fn instrument(&self, symbol: &Symbol) -> Option<&Instrument>;

    /// The strategy's position in `symbol` (its own fills, signed: negative is short).
    fn position(&self, symbol: &Symbol) -> Qty;

    /// The strategy's orders still working.
    fn open_orders(&self) -> Vec<Order>;

    /// Its position plus what its working orders in `symbol` would add (buys positive): what a strategy that
    /// targets a position must compare its target with, so an order not yet filled is not sent twice.
    fn committed(&self, symbol: &Symbol) -> Qty {
        self.open_orders()
            .iter()
            .filter(|o| o.symbol == *symbol)
            .fold(self.position(symbol), |q, o| q + o.leaves_quantity().signed(o.side))
    }

    /// The strategy's realized plus unrealized P&L at the last prices, when it fits.
    fn pnl(&self) -> Option<Money>;

    /// Sends an order through the Order Manager (validation, risk, journal, the broker).
    fn submit(&mut self, req: OrderRequest) -> Result<OrderId, Refusal>;

    /// Asks to cancel one of the strategy's orders; the outcome arrives through [`Strategy::on_order`].
    fn cancel(&mut self, id: OrderId) -> Result<(), Refusal>;

    /// Modifies a working order's quantity (the whole order, what is filled included) and/or price in place (a
    /// cancel/replace at the broker): validated and risk-checked as the order it becomes; the order keeps its
    /// terms until the broker confirms ([`Strategy::on_order`] then shows the new ones) and keeps them if refused.
    fn modify(&mut self, id: OrderId, quantity: Option<Qty>, price: Option<Price>) -> Result<(), Refusal>;

    /// Replaces a working order by another: asks to cancel it and sends `req` in its place, for what a modify
    /// cannot change (side, type, symbol). The new order's id, or why either step was refused; an order already
    /// filled cannot be replaced, and the cancel's refusal says so before anything is sent.
    fn replace(&mut self, id: OrderId, req: OrderRequest) -> Result<OrderId, Refusal> {
        self.cancel(id)?;
        self.submit(req)
    }

    /// Calls [`Strategy::on_timer`] with `id` at `at` (in the run's time; a time already past fires next).
    fn set_timer(&mut self, at: DateTime<Utc>, id: u64);
}

/// A trading strategy. Every callback has a default that does nothing, so a strategy implements only what it uses.
pub trait Strategy: Send {
    /// Its registry name (`sma_cross`), which is also how its orders are tagged: `source = strategy:<name>`.
    fn name(&self) -> &str;

    /// The symbols whose data it receives.
    fn symbols(&self) -> &[Symbol];

    /// The bar intervals it wants [`Strategy::on_bar`] for (none by default).
    fn bar_intervals(&self) -> &[Interval] {
        &[]
    }

    fn on_start(&mut self, _ctx: &mut dyn Context) {}
    fn on_trade(&mut self, _ctx: &mut dyn Context, _trade: &TradeTick) {}
    fn on_quote(&mut self, _ctx: &mut dyn Context, _quote: &QuoteTick) {}
    fn on_book(&mut self, _ctx: &mut dyn Context, _book: &BookView<'_>) {}
    fn on_bar(&mut self, _ctx: &mut dyn Context, _bar: &BarEvent) {}
    /// A trading signal for one of its symbols (live: TP-Capital's as they arrive; in a backtest: `--signals`).
    fn on_signal(&mut self, _ctx: &mut dyn Context, _signal: &SignalEvent) {}
    /// One of its orders changed (accepted, partly filled, filled, canceled, expired, rejected).
    fn on_order(&mut self, _ctx: &mut dyn Context, _order: &Order) {}
    fn on_fill(&mut self, _ctx: &mut dyn Context, _order: &Order, _fill: &Fill) {}
    fn on_refused(&mut self, _ctx: &mut dyn Context, _refusal: &Refusal) {}
    fn on_timer(&mut self, _ctx: &mut dyn Context, _id: u64) {}
}
