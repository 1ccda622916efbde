//! The simulated B3 market.
//!
//! Each instrument has a real (small) limit order book: at least [`MIN_LEVELS`] price levels per side on the
//! tick grid. Trades happen only by an aggressor consuming the best opposite level, so every trade price is a price
//! the book actually showed and the book moves because trades and cancels empty levels. A hidden fair value does a
//! seeded random walk and tilts the aggressor mix towards it, which gives prices the look of a real tape. Each
//! symbol has its own seeded RNG: the same seed gives the same tape for that symbol whatever the interleaving.
//!
//! The paper broker executes against this same book through [`SimMarket::execute`], so simulated fills consume
//! the liquidity they were priced on and print on the tape like anyone else's.

use chrono::{DateTime, Utc};
use domain::{Instrument, InstrumentKind, Instruments, Price, Qty, Side, Symbol};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::broadcast;

pub use market_data::{Aggressor, BookSnapshot, BookUpdate, Level, Trade, TradeKind};

/// Minimum depth kept on each side of every book.
pub const MIN_LEVELS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MarketEvent {
    Trade(Trade),
    /// A full book (depth [`PUBLISHED_DEPTH`]): at start, every [`SNAPSHOT_EVERY`] updates, and after a jump.
    Book(BookSnapshot),
    /// The levels of the top [`PUBLISHED_DEPTH`] that changed since the previous update or snapshot.
    BookUpdate(BookUpdate),
}

/// A full snapshot goes out after this many incremental updates, so a receiver that missed one recovers.
pub const SNAPSHOT_EVERY: u64 = 500;

/// Levels per side in published book events.
pub const PUBLISHED_DEPTH: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimConfig {
    pub seed: u64,
    /// Average trades per second per symbol when driven by [`SimMarket::run`].
    pub trades_per_second: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig { seed: 42, trades_per_second: 50.0 }
    }
}

/// Starting price and daily volatility (as a fraction of the price) of the default instruments.
fn profile(ins: &Instrument) -> (Price, f64) {
    let p = |v: f64| Price::from_f64(v).unwrap_or(Price(1_000_000));
    match ins.symbol.as_str() {
        "PETR4" => (p(38.50), 0.020),
        "VALE3" => (p(62.10), 0.020),
        "ITUB4" => (p(35.20), 0.015),
        "BBDC4" => (p(15.40), 0.018),
        "B3SA3" => (p(12.60), 0.022),
        "BOVA11" => (p(128.40), 0.012),
        s if s.starts_with("WIN") => (p(128_000.0), 0.012),
        s if s.starts_with("WDO") => (p(5_400.0), 0.008),
        _ => match ins.kind {
            InstrumentKind::Future => (p(1_000.0), 0.015),
            _ => (p(20.0), 0.020),
        },
    }
}

/// Market events in a simulated trading day, for scaling the daily volatility to one event.
const EVENTS_PER_DAY: f64 = 1_000_000.0;
/// Pull of the fair value back to its starting level per event (keeps very long runs in a plausible range).
const REVERSION: f64 = 2e-6;

/// Broker ids that show up as agents on B3's tape.
const AGENTS: [u32; 10] = [3, 8, 15, 27, 40, 72, 85, 90, 114, 308];
/// The agent id the paper broker's own fills print under.
pub const PAPER_AGENT: u32 = 999;

struct SymbolSim {
    ins: Instrument,
    rng: ChaCha8Rng,
    /// In ticks.
    fair: f64,
    anchor: f64,
    /// Amplitude of the uniform per-event shock to the fair value, in ticks.
    vol: f64,
    bids: Vec<Level>,
    asks: Vec<Level>,
    next_trade_id: u64,
    last: Option<Trade>,
    /// Recent prints, for history requests (gap backfill).
    history: std::collections::VecDeque<Trade>,
    /// The book as last published, to compute the next incremental update from.
    published: Option<BookSnapshot>,
    book_seq: u64,
}

/// Prints kept per symbol for history requests.
pub const HISTORY: usize = 100_000;

impl SymbolSim {
    fn new(ins: Instrument, seed: u64) -> Self {
        let (start, daily) = profile(&ins);
        let tick = ins.tick_size.units();
        let mid = ins.floor_to_tick(start).units() / tick;
        // A uniform shock on [-a, a] has variance a²/3; scale it so a day of events has the daily volatility.
        let vol = daily * mid as f64 / EVENTS_PER_DAY.sqrt() * 3f64.sqrt();
        let mut s = SymbolSim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            fair: mid as f64,
            anchor: mid as f64,
            vol,
            bids: Vec::new(),
            asks: Vec::new(),
            next_trade_id: 1,
            last: None,
            history: std::collections::VecDeque::new(),
            published: None,
            book_seq: 0,
            ins,
        };
        for i in 0..MIN_LEVELS as i64 {
            let qb = s.random_size() * 4;
            let qa = s.random_size() * 4;
            s.bids.push(Level { price: Price((mid - 1 - i) * tick), quantity: qb });
            s.asks.push(Level { price: Price((mid + 1 + i) * tick), quantity: qa });
        }
        s
    }

    fn tick(&self) -> i64 {
        self.ins.tick_size.units()
    }

    fn random_size(&mut self) -> Qty {
        let lots = match self.ins.kind {
            InstrumentKind::Future => self.rng.gen_range(1..=10),
            _ => self.rng.gen_range(1..=8),
        };
        lots * self.ins.lot
    }

    fn agent(&mut self) -> u32 {
        AGENTS[self.rng.gen_range(0..AGENTS.len())]
    }

    fn mid_ticks(&self) -> f64 {
        match (self.bids.first(), self.asks.first()) {
            (Some(b), Some(a)) => (b.price.units() + a.price.units()) as f64 / 2.0 / self.tick() as f64,
            _ => self.fair,
        }
    }

    /// Keeps both sides at least MIN_LEVELS deep, extending each away from the touch.
    fn refill(&mut self) {
        let tick = self.tick();
        if self.bids.is_empty() {
            let anchor = self.asks.first().map_or(self.fair.round() as i64 * tick, |a| a.price.units());
            let q = self.random_size() * 2;
            self.bids.push(Level { price: Price(anchor - tick), quantity: q });
        }
        if self.asks.is_empty() {
            let anchor = self.bids.first().map_or(self.fair.round() as i64 * tick, |b| b.price.units());
            let q = self.random_size() * 2;
            self.asks.push(Level { price: Price(anchor + tick), quantity: q });
        }
        // Liquid B3 books trade with a one- or two-tick spread: market makers fill a wider gap right away,
        // on the side further from the fair value first.
        while let (Some(b), Some(a)) =
            (self.bids.first().map(|l| l.price.units()), self.asks.first().map(|l| l.price.units()))
        {
            if (a - b) / tick <= 2 {
                break;
            }
            let q = self.random_size() * 2;
            let fair_units = self.fair * tick as f64;
            if (fair_units - b as f64) > (a as f64 - fair_units) {
                self.bids.insert(0, Level { price: Price(b + tick), quantity: q });
            } else {
                self.asks.insert(0, Level { price: Price(a - tick), quantity: q });
            }
        }
        while self.bids.len() < MIN_LEVELS {
            let worst = self.bids.last().map_or(0, |l| l.price.units());
            if worst - tick <= 0 {
                break;
            }
            let q = self.random_size() * 4;
            self.bids.push(Level { price: Price(worst - tick), quantity: q });
        }
        while self.asks.len() < MIN_LEVELS {
            let worst = self.asks.last().map_or(0, |l| l.price.units());
            let q = self.random_size() * 4;
            self.asks.push(Level { price: Price(worst + tick), quantity: q });
        }
    }

    /// Takes up to `qty` from the book on the side opposite to `side` (a BUY takes asks), not crossing `limit`.
    /// Returns the executed (price, quantity) pieces, best first.
    fn take(&mut self, side: Side, qty: Qty, limit: Option<Price>) -> Vec<(Price, Qty)> {
        let mut left = qty;
        let mut out = Vec::new();
        let book = match side {
            Side::Buy => &mut self.asks,
            Side::Sell => &mut self.bids,
        };
        while left.is_positive() {
            let Some(top) = book.first_mut() else { break };
            let acceptable = match (side, limit) {
                (_, None) => true,
                (Side::Buy, Some(l)) => top.price <= l,
                (Side::Sell, Some(l)) => top.price >= l,
            };
            if !acceptable {
                break;
            }
            let q = left.min(top.quantity);
            out.push((top.price, q));
            top.quantity -= q;
            left -= q;
            if top.quantity.is_zero() {
                book.remove(0);
            }
        }
        out
    }

    fn print(&mut self, aggressor: Side, price: Price, quantity: Qty, agent: Option<u32>, now: DateTime<Utc>) -> Trade {
        let other = self.agent();
        let ours = agent.unwrap_or_else(|| self.agent());
        let (buyer_agent, seller_agent) = match aggressor {
            Side::Buy => (ours, other),
            Side::Sell => (other, ours),
        };
        let trade = Trade {
            symbol: self.ins.symbol.to_string(),
            trade_id: self.next_trade_id,
            price,
            quantity,
            aggressor: match aggressor {
                Side::Buy => Aggressor::Buy,
                Side::Sell => Aggressor::Sell,
            },
            buyer_agent,
            seller_agent,
            exchange_ts: now,
            receive_ts: now,
            kind: TradeKind::New,
        };
        self.next_trade_id += 1;
        self.last = Some(trade.clone());
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(trade.clone());
        trade
    }

    /// The book event to publish after a change: an update with what changed, or periodically a snapshot.
    fn book_event(&mut self, now: DateTime<Utc>) -> Option<MarketEvent> {
        let current = self.snapshot(PUBLISHED_DEPTH, now);
        let event = match &self.published {
            Some(prev) if !self.book_seq.is_multiple_of(SNAPSHOT_EVERY) => {
                let u = market_data::book::diff(&self.ins.symbol, self.book_seq + 1, prev, &current);
                if u.changes.is_empty() {
                    return None;
                }
                self.book_seq += 1;
                MarketEvent::BookUpdate(u)
            }
            _ => {
                self.book_seq += 1;
                MarketEvent::Book(current.clone())
            }
        };
        self.published = Some(current);
        Some(event)
    }

    fn snapshot(&self, depth: usize, now: DateTime<Utc>) -> BookSnapshot {
        BookSnapshot {
            symbol: self.ins.symbol.to_string(),
            bids: self.bids.iter().take(depth).copied().collect(),
            asks: self.asks.iter().take(depth).copied().collect(),
            ts: now,
        }
    }

    /// One market event: usually a trade, otherwise liquidity arriving or leaving. Returns the trades printed.
    fn step(&mut self, now: DateTime<Utc>) -> Vec<Trade> {
        let shock: f64 = self.rng.gen_range(-1.0..1.0);
        self.fair += shock * self.vol + REVERSION * (self.anchor - self.fair);
        let tick = self.tick();
        let mid = self.mid_ticks();
        // Market makers follow the fair value: when the book has wandered off it, they move their quotes a tick
        // towards it. Without this the book's own dynamics drift far faster than any real stock.
        let off = mid - self.fair;
        if off.abs() > 2.0 {
            let step = if off > 0.0 { -tick } else { tick };
            let floor_ok = self.bids.last().is_none_or(|l| l.price.units() + step > 0);
            if floor_ok {
                for l in self.bids.iter_mut().chain(self.asks.iter_mut()) {
                    l.price = Price(l.price.units() + step);
                }
            }
        }
        let mut trades = Vec::new();
        let roll: f64 = self.rng.gen();
        if roll < 0.55 {
            // Aggressors lean towards the fair value; the lean is capped so both sides always trade.
            let p_buy = (0.5 + (self.fair - mid) * 0.15).clamp(0.15, 0.85);
            let side = if self.rng.gen_bool(p_buy) { Side::Buy } else { Side::Sell };
            let size = self.random_size();
            for (price, q) in self.take(side, size, None) {
                trades.push(self.print(side, price, q, None, now));
            }
        } else if roll < 0.85 {
            // New passive liquidity near the touch; joining inside the spread when there is room.
            let side = if self.rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
            let size = self.random_size();
            let spread = match (self.bids.first(), self.asks.first()) {
                (Some(b), Some(a)) => (a.price.units() - b.price.units()) / tick,
                _ => 2,
            };
            let improve = spread > 1 && self.rng.gen_bool(0.6);
            let (book, dir) = match side {
                Side::Buy => (&mut self.bids, -1),
                Side::Sell => (&mut self.asks, 1),
            };
            if improve {
                if let Some(best) = book.first().map(|l| l.price.units()) {
                    book.insert(0, Level { price: Price(best - dir * tick), quantity: size });
                }
            } else if !book.is_empty() {
                let i = self.rng.gen_range(0..book.len().min(5));
                book[i].quantity += size;
            }
        } else {
            // Cancels thin a random level near the touch.
            let side_bids = self.rng.gen_bool(0.5);
            let i = self.rng.gen_range(0..3usize);
            let lot = self.ins.lot;
            let book = if side_bids { &mut self.bids } else { &mut self.asks };
            if let Some(level) = book.get_mut(i) {
                let cut = lot * (level.quantity.get() / 2 / lot.get());
                level.quantity -= cut;
                if level.quantity.is_zero() {
                    book.remove(i);
                }
            }
        }
        self.refill();
        trades
    }
}

/// Shared handle to the simulated market.
#[derive(Clone)]
pub struct SimMarket {
    inner: Arc<Inner>,
}

struct Inner {
    instruments: Instruments,
    symbols: HashMap<Symbol, Mutex<SymbolSim>>,
    order: Vec<Symbol>,
    config: SimConfig,
    tx: broadcast::Sender<MarketEvent>,
}

impl SimMarket {
    pub fn new(instruments: Instruments, config: SimConfig) -> Self {
        let mut symbols = HashMap::new();
        let mut order = Vec::new();
        for (i, ins) in instruments.iter().enumerate() {
            let seed = config.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(i as u64);
            order.push(ins.symbol);
            symbols.insert(ins.symbol, Mutex::new(SymbolSim::new(ins.clone(), seed)));
        }
        let (tx, _) = broadcast::channel(65_536);
        SimMarket { inner: Arc::new(Inner { instruments, symbols, order, config, tx }) }
    }

    pub fn instruments(&self) -> &Instruments {
        &self.inner.instruments
    }

    pub fn subscribe(&self) -> broadcast::Receiver<MarketEvent> {
        self.inner.tx.subscribe()
    }

    fn publish(&self, trades: Vec<Trade>) {
        for t in trades {
            // No subscribers is fine: the market runs whether or not anyone listens.
            let _ = self.inner.tx.send(MarketEvent::Trade(t));
        }
    }

    /// Advances one symbol by one event and publishes what traded.
    pub fn step(&self, symbol: &str, now: DateTime<Utc>) -> Vec<Trade> {
        let Some(sim) = self.inner.symbols.get(symbol) else {
            return Vec::new();
        };
        let (trades, book) = {
            let mut s = sim.lock();
            let trades = s.step(now);
            (trades, s.book_event(now))
        };
        self.publish(trades.clone());
        if let Some(ev) = book {
            let _ = self.inner.tx.send(ev);
        }
        trades
    }

    /// Advances every symbol by one event.
    pub fn step_all(&self, now: DateTime<Utc>) {
        for s in &self.inner.order {
            self.step(s, now);
        }
    }

    /// Prints with `from_id ≤ trade_id ≤ to_id` still in the history window, oldest first.
    pub fn history(&self, symbol: &str, from_id: u64, to_id: u64) -> Vec<Trade> {
        let Some(sim) = self.inner.symbols.get(symbol) else { return Vec::new() };
        let s = sim.lock();
        s.history.iter().filter(|t| t.trade_id >= from_id && t.trade_id <= to_id).cloned().collect()
    }

    pub fn last_trade(&self, symbol: &str) -> Option<Trade> {
        self.inner.symbols.get(symbol).and_then(|s| s.lock().last.clone())
    }

    pub fn last_price(&self, symbol: &str) -> Option<Price> {
        self.inner.symbols.get(symbol).and_then(|s| s.lock().last.as_ref().map(|t| t.price))
    }

    pub fn book(&self, symbol: &str, depth: usize, now: DateTime<Utc>) -> Option<BookSnapshot> {
        Some(self.inner.symbols.get(symbol)?.lock().snapshot(depth, now))
    }

    /// Executes an aggressive order against the book: takes up to `qty` without crossing `limit`, prints the
    /// trades under the paper broker's agent id and publishes them. Returns (price, quantity) per level taken.
    pub fn execute(
        &self,
        symbol: &str,
        side: Side,
        qty: Qty,
        limit: Option<Price>,
        now: DateTime<Utc>,
    ) -> Vec<(Price, Qty)> {
        let Some(sim) = self.inner.symbols.get(symbol) else {
            return Vec::new();
        };
        let (pieces, trades, book) = {
            let mut s = sim.lock();
            let pieces = s.take(side, qty, limit);
            let trades: Vec<Trade> = pieces.iter().map(|&(p, q)| s.print(side, p, q, Some(PAPER_AGENT), now)).collect();
            s.refill();
            let book = if pieces.is_empty() { None } else { s.book_event(now) };
            (pieces, trades, book)
        };
        self.publish(trades);
        if let Some(ev) = book {
            let _ = self.inner.tx.send(ev);
        }
        pieces
    }

    /// How much could execute right now without crossing `limit` (for FOK).
    pub fn available(&self, symbol: &str, side: Side, limit: Option<Price>) -> Qty {
        let Some(sim) = self.inner.symbols.get(symbol) else {
            return Qty::ZERO;
        };
        let s = sim.lock();
        let book = match side {
            Side::Buy => &s.asks,
            Side::Sell => &s.bids,
        };
        book.iter()
            .take_while(|l| match (side, limit) {
                (_, None) => true,
                (Side::Buy, Some(p)) => l.price <= p,
                (Side::Sell, Some(p)) => l.price >= p,
            })
            .map(|l| l.quantity)
            .sum()
    }

    /// Runs the market until the task is dropped: every symbol steps at the configured average rate.
    pub async fn run(self) {
        let per_symbol = self.inner.config.trades_per_second.max(0.1);
        // Batches events per wake-up so high rates do not need a timer per event.
        let wake_hz = per_symbol.min(200.0);
        let trades_per_wake = per_symbol / wake_hz;
        let mut interval = tokio::time::interval(std::time::Duration::from_secs_f64(1.0 / wake_hz));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // Owed trades per symbol: events are stepped until the tape has printed them (an event prints zero, one
        // or several trades), so the rate is the configured one whatever the event mix.
        let mut owed = vec![0.0f64; self.inner.order.len()];
        loop {
            interval.tick().await;
            let now = Utc::now();
            for (i, symbol) in self.inner.order.iter().enumerate() {
                owed[i] += trades_per_wake;
                let mut guard = 0;
                while owed[i] >= 1.0 && guard < 1_000_000 {
                    owed[i] -= self.step(symbol, now).len() as f64;
                    guard += 1;
                }
            }
        }
    }

    /// Follows a print from another source (a replay): the book is re-centred around its price, a synthetic book
    /// for a tape recorded without depth, and the print goes out on this market's tape so the paper broker sees it.
    pub fn follow(&self, t: &Trade) {
        let Some(sim) = self.inner.symbols.get(t.symbol.as_str()) else { return };
        let book = {
            let mut s = sim.lock();
            let tick = s.tick();
            let at = s.ins.floor_to_tick(t.price).units();
            s.bids.clear();
            s.asks.clear();
            for i in 1..=MIN_LEVELS as i64 {
                let (qb, qa) = (s.random_size() * 4, s.random_size() * 4);
                if at - i * tick > 0 {
                    s.bids.push(Level { price: Price(at - i * tick), quantity: qb });
                }
                s.asks.push(Level { price: Price(at + i * tick), quantity: qa });
            }
            s.fair = (at / tick) as f64;
            s.next_trade_id = s.next_trade_id.max(t.trade_id + 1);
            s.last = Some(t.clone());
            let snap = s.snapshot(PUBLISHED_DEPTH, t.receive_ts);
            s.published = Some(snap.clone());
            s.book_seq += 1;
            snap
        };
        let _ = self.inner.tx.send(MarketEvent::Trade(t.clone()));
        let _ = self.inner.tx.send(MarketEvent::Book(book));
    }

    /// Seeds every symbol with a first trade so that prices exist before the first tick of the timer.
    pub fn warm_up(&self, now: DateTime<Utc>) {
        for s in &self.inner.order {
            let mut guard = 0;
            while self.last_trade(s).is_none() && guard < 1_000 {
                self.step(s, now);
                guard += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn market(seed: u64) -> SimMarket {
        let ins = Instruments::b3_defaults(NaiveDate::from_ymd_opt(2025, 11, 24).unwrap());
        SimMarket::new(ins, SimConfig { seed, trades_per_second: 50.0 })
    }

    #[test]
    fn deterministic_with_a_seed() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let (a, b, c) = (market(7), market(7), market(8));
        let tape = |m: &SimMarket| {
            (0..500).flat_map(|_| m.step("PETR4", now)).map(|t| (t.price, t.quantity)).collect::<Vec<_>>()
        };
        let (ta, tb, tc) = (tape(&a), tape(&b), tape(&c));
        assert!(!ta.is_empty());
        assert_eq!(ta, tb);
        assert_ne!(ta, tc);
    }

    #[test]
    fn prices_on_grid_and_book_consistent() {
        let m = market(1);
        let now = DateTime::<Utc>::UNIX_EPOCH;
        for ins in m.instruments().clone().iter() {
            let mut prev_id = 0;
            for _ in 0..2_000 {
                for t in m.step(&ins.symbol, now) {
                    assert!(t.price.is_on_grid(ins.tick_size), "{} off grid: {}", ins.symbol, t.price);
                    assert!(t.quantity.is_positive() && t.quantity.is_multiple_of_lot(ins.lot));
                    assert_eq!(t.trade_id, prev_id + 1, "trade ids are a gapless sequence");
                    prev_id = t.trade_id;
                }
                let book = m.book(&ins.symbol, 100, now).unwrap();
                assert!(book.bids.len() >= MIN_LEVELS && book.asks.len() >= MIN_LEVELS);
                assert!(book.bids[0].price < book.asks[0].price, "book never crossed");
                assert!(book.bids.windows(2).all(|w| w[0].price > w[1].price));
                assert!(book.asks.windows(2).all(|w| w[0].price < w[1].price));
                assert!(book
                    .bids
                    .iter()
                    .chain(&book.asks)
                    .all(|l| l.quantity.is_positive() && l.price.is_on_grid(ins.tick_size)));
            }
        }
    }

    #[test]
    fn volatility_is_plausible() {
        // 20,000 events is a few minutes of the default tape: PETR4 should move cents to tens of cents, not reais.
        let m = market(11);
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let prices: Vec<f64> = (0..20_000).flat_map(|_| m.step("PETR4", now)).map(|t| t.price.to_f64()).collect();
        let (min, max) = prices.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
        assert!(max - min < 1.5, "range {min}..{max}");
        assert!(max - min > 0.02, "prices move: {min}..{max}");
    }

    #[test]
    fn follow_recentres_the_book_on_a_replayed_print() {
        let m = market(9);
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let mut t = m
            .step("PETR4", now)
            .into_iter()
            .chain(std::iter::repeat_with(|| m.step("PETR4", now)).flatten())
            .next()
            .unwrap();
        t.price = Price::from_f64(21.37).unwrap();
        t.trade_id = 5_000;
        m.follow(&t);
        let b = m.book("PETR4", 10, now).unwrap();
        assert_eq!(
            (b.bids[0].price, b.asks[0].price),
            (Price::from_f64(21.36).unwrap(), Price::from_f64(21.38).unwrap())
        );
        assert_eq!(m.last_price("PETR4"), Some(t.price));
    }

    #[test]
    fn execute_consumes_the_book_and_respects_limits() {
        let m = market(3);
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let before = m.book("PETR4", 20, now).unwrap();
        let best_ask = before.asks[0];
        let pieces = m.execute("PETR4", Side::Buy, best_ask.quantity, Some(best_ask.price), now);
        assert_eq!(pieces, vec![(best_ask.price, best_ask.quantity)]);
        // Market makers may refill the emptied level, but never below where we bought.
        let after = m.book("PETR4", 20, now).unwrap();
        assert!(after.asks[0].price >= best_ask.price);
        // A limit below the best ask takes nothing.
        let below = Price(after.asks[0].price.units() - 100);
        assert!(m.execute("PETR4", Side::Buy, Qty(100), Some(below), now).is_empty());
        assert_eq!(m.last_trade("PETR4").unwrap().buyer_agent, PAPER_AGENT);
    }
}
