//! Data Capture: runs a [`feed::Feed`]'s events through the [`TickProcessor`], publishes what it accepts on the
//! bus (`md.trades.SYM`, `md.candles.SYM`, `md.book.SYM`, `md.quotes.SYM`), repairs sequence gaps with history
//! requests where the feed can answer them, and answers queries about the tape, the book, candles and the feed's
//! health. [`recorder::Recorder`] writes the bus's market data to Parquet.

pub mod feed;
pub mod recorder;

use bus::{subjects, Bus, Event};
use chrono::{DateTime, Utc};
use clock::SharedClock;
use domain::Instruments;
use feed::{Feed, FeedConnection, FeedEvent};
use market_data::{Interval, Outcome, ProcessorConfig, SymbolStats, TickProcessor, Trade};
use market_sim::SimMarket;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedStatus {
    pub source: String,
    /// Per-dimension connection state (login, market data), with the reason when not connected.
    pub connection: Option<FeedConnection>,
    /// The most recent transitions, newest last.
    pub transitions: Vec<FeedConnection>,
    pub history_requests: HistoryStats,
    pub symbols: BTreeMap<String, SymbolStatus>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryStats {
    pub sent: u64,
    pub completed: u64,
    pub unsupported: u64,
    /// Requests still streaming: id → progress 0..1.
    pub pending: BTreeMap<u64, f32>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SymbolStatus {
    #[serde(flatten)]
    pub stats: SymbolStats,
    /// Trades per second over the last sampling window.
    pub trades_per_second: f64,
}

/// How often a symbol's full book is published at most.
const BOOK_EVERY: chrono::Duration = chrono::Duration::milliseconds(100);

#[derive(Default)]
struct PendingBook {
    published_at: Option<DateTime<Utc>>,
    dirty: bool,
    top: Option<(Option<market_data::Level>, Option<market_data::Level>)>,
}

/// How often a symbol's forming one-minute bar is published at most.
const CANDLE_EVERY: chrono::Duration = chrono::Duration::milliseconds(250);

struct PendingBar {
    bar: market_data::Bar,
    published_at: Option<DateTime<Utc>>,
    /// Changed since last published.
    dirty: bool,
}

/// A consumer called on the feed's thread for every live trade accepted by processing, before the bus sees it.
pub type TradeTap = Arc<dyn Fn(&Trade) + Send + Sync>;

struct SymbolCtx {
    symbol: String,
    trades_subject: String,
    candles_subject: String,
    new: metrics::Counter,
    gap: metrics::Counter,
    backfilled: metrics::Counter,
    correction: metrics::Counter,
    duplicate: metrics::Counter,
    invalid: metrics::Counter,
    gaps: metrics::Counter,
    bar: Mutex<Option<PendingBar>>,
}

struct Inner {
    symbol_ctx: parking_lot::RwLock<std::collections::HashMap<String, Arc<SymbolCtx>>>,
    processor: Mutex<TickProcessor>,
    taps: parking_lot::RwLock<Vec<TradeTap>>,
    books: Mutex<std::collections::HashMap<String, PendingBook>>,
    bus: Bus,
    feed: Arc<dyn Feed>,
    rates: Mutex<BTreeMap<String, f64>>,
    connection: Mutex<(Option<FeedConnection>, VecDeque<FeedConnection>)>,
    history: Mutex<HistoryStats>,
    clock: SharedClock,
}

#[derive(Clone)]
pub struct DataCapture {
    inner: Arc<Inner>,
}

const TRANSITIONS_KEPT: usize = 50;

impl DataCapture {
    /// Starts consuming `feed`. `taps` see every live trade from the first one (see [`DataCapture::add_trade_tap`]).
    pub fn start(
        feed: Arc<dyn Feed>,
        instruments: Instruments,
        bus: Bus,
        taps: Vec<TradeTap>,
        clock: SharedClock,
    ) -> DataCapture {
        let dc = DataCapture {
            inner: Arc::new(Inner {
                processor: Mutex::new(TickProcessor::new(instruments, ProcessorConfig::default())),
                taps: parking_lot::RwLock::new(taps),
                symbol_ctx: parking_lot::RwLock::new(std::collections::HashMap::new()),
                books: Mutex::new(std::collections::HashMap::new()),
                bus,
                feed: feed.clone(),
                rates: Mutex::new(BTreeMap::new()),
                connection: Mutex::new((None, VecDeque::new())),
                history: Mutex::new(HistoryStats::default()),
                clock: clock.clone(),
            }),
        };
        let this = dc.clone();
        feed.start(feed::FeedSink::new(clock, move |ev| this.on_event(ev)));
        let sampler = dc.clone();
        tokio::spawn(async move { sampler.sample_rates().await });
        let bars = dc.clone();
        tokio::spawn(async move { bars.flush_bars().await });
        dc
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Calls `tap` inline for every live trade that passes validation, before it is published: the path of
    /// in-process strategies, which answer a trade without waiting for a task to be woken.
    pub fn add_trade_tap(&self, tap: TradeTap) {
        self.inner.taps.write().push(tap);
    }

    /// The simulated market as the feed, seeded with what the market already printed.
    pub fn start_sim(
        market: &SimMarket,
        bus: Bus,
        drop_every: u64,
        taps: Vec<TradeTap>,
        clock: SharedClock,
    ) -> DataCapture {
        let feed = feed::SimFeed::new(market.clone(), drop_every);
        Self::start_sim_feed(market, feed, bus, taps, clock)
    }

    /// [`DataCapture::start_sim`] with a feed built by the caller (backoff, outages).
    pub fn start_sim_feed(
        market: &SimMarket,
        feed: Arc<feed::SimFeed>,
        bus: Bus,
        taps: Vec<TradeTap>,
        clock: SharedClock,
    ) -> DataCapture {
        let dc = Self::start(feed, market.instruments().clone(), bus, taps, clock);
        let now = dc.now();
        let mut p = dc.inner.processor.lock();
        for ins in market.instruments().iter() {
            if let Some(t) = market.last_trade(&ins.symbol) {
                p.on_trade(t);
            }
            if let Some(b) = market.book(&ins.symbol, market_sim::PUBLISHED_DEPTH, now) {
                p.on_book(b);
            }
        }
        drop(p);
        dc
    }

    fn on_event(&self, ev: FeedEvent) {
        match ev {
            FeedEvent::Trade(t) => self.on_trade(t, true),
            FeedEvent::Book(b) => {
                let symbol = b.symbol.clone();
                self.inner.processor.lock().on_book(b);
                self.after_book_change(&symbol, true);
            }
            FeedEvent::BookUpdate(u) => {
                let in_sequence = self.inner.processor.lock().on_book_update(&u);
                if !in_sequence {
                    metrics::counter!("ts_md_book_gaps_total", "symbol" => u.symbol.clone()).increment(1);
                }
                self.after_book_change(&u.symbol, false);
            }
            FeedEvent::Connection(c) => {
                tracing::info!(login = ?c.login, market_data = ?c.market_data, reason = ?c.reason, "feed connection");
                let up = c.market_data == domain::broker::LinkState::Connected;
                metrics::gauge!("ts_md_feed_connected").set(if up { 1.0 } else { 0.0 });
                let mut conn = self.inner.connection.lock();
                if conn.1.len() == TRANSITIONS_KEPT {
                    conn.1.pop_front();
                }
                conn.1.push_back(c.clone());
                conn.0 = Some(c);
            }
            FeedEvent::History { request_id, trades, progress, last, .. } => {
                for t in trades {
                    self.on_trade(t, false);
                }
                let mut h = self.inner.history.lock();
                if last {
                    h.pending.remove(&request_id);
                    h.completed += 1;
                } else {
                    h.pending.insert(request_id, progress);
                }
            }
        }
    }

    /// The per-symbol subjects and metric handles, made once: building them per trade (a formatted subject, a
    /// labelled metric key) cost more than validating the trade.
    fn symbol_ctx(&self, symbol: &str) -> Arc<SymbolCtx> {
        if let Some(c) = self.inner.symbol_ctx.read().get(symbol) {
            return c.clone();
        }
        let outcome = |label: &'static str| metrics::counter!("ts_md_trades_total", "symbol" => symbol.to_string(), "outcome" => label);
        let ctx = Arc::new(SymbolCtx {
            symbol: symbol.to_string(),
            trades_subject: subjects::trades(symbol),
            candles_subject: subjects::candles(symbol),
            new: outcome("new"),
            gap: outcome("gap"),
            backfilled: outcome("backfilled"),
            correction: outcome("correction"),
            duplicate: outcome("duplicate"),
            invalid: outcome("invalid"),
            gaps: metrics::counter!("ts_md_gaps_total", "symbol" => symbol.to_string()),
            bar: Mutex::new(None),
        });
        // Two feeds' threads may race to make it: the first one stays.
        self.inner.symbol_ctx.write().entry(symbol.to_string()).or_insert(ctx).clone()
    }

    fn on_trade(&self, t: Trade, live: bool) {
        let received = t.receive_ts;
        let ctx = self.symbol_ctx(&t.symbol);
        let for_bus = t.clone();
        let processed = self.inner.processor.lock().on_trade(t);
        let symbol = &for_bus.symbol;
        match &processed.outcome {
            Outcome::New { gap: Some(_) } => &ctx.gap,
            Outcome::New { gap: None } => &ctx.new,
            Outcome::Backfilled => &ctx.backfilled,
            Outcome::Edited | Outcome::Canceled => &ctx.correction,
            Outcome::Duplicate => &ctx.duplicate,
            Outcome::Invalid(_) => &ctx.invalid,
        }
        .increment(1);
        if let Outcome::New { gap: Some(g) } = &processed.outcome {
            ctx.gaps.increment(1);
            tracing::warn!(%symbol, from = g.from, to = g.to, "trade sequence gap; requesting a backfill");
            let mut h = self.inner.history.lock();
            match self.inner.feed.request_history(symbol, g.from, g.to) {
                Ok(id) => {
                    h.sent += 1;
                    h.pending.insert(id, 0.0);
                }
                Err(e) => {
                    h.unsupported += 1;
                    tracing::warn!(%symbol, error = %e, "gap cannot be backfilled");
                }
            }
        }
        if !processed.outcome.is_accepted() {
            return;
        }
        if live {
            for tap in self.inner.taps.read().iter() {
                tap(&for_bus);
            }
        }
        let bar = processed.bar;
        self.inner.bus.publish(&ctx.trades_subject, Event::Trade(for_bus));
        let now = self.now();
        if let Some(bar) = bar {
            self.on_bar(&ctx, bar, now);
        }
        if live {
            let latency = (now - received).num_nanoseconds().unwrap_or(0).max(0) as f64 / 1e9;
            metrics::histogram!("ts_md_tick_to_publish_seconds").record(latency);
        }
    }

    /// The quote goes out whenever the top of the book changes; the full book at most every [`BOOK_EVERY`] per
    /// symbol (and at once for a snapshot), which is all a screen can show.
    fn after_book_change(&self, symbol: &str, snapshot: bool) {
        let (quote, book) = {
            let p = self.inner.processor.lock();
            (p.quote(symbol), p.book(symbol, market_sim::PUBLISHED_DEPTH))
        };
        let now = self.now();
        let mut books = self.inner.books.lock();
        let slot = books.entry(symbol.to_string()).or_default();
        if let Some(q) = quote {
            let top = (q.bid, q.ask);
            if slot.top != Some(top) {
                slot.top = Some(top);
                self.inner.bus.publish(&subjects::quotes(symbol), Event::Quote(q));
            }
        }
        let due = snapshot || slot.published_at.is_none_or(|t| now - t >= BOOK_EVERY);
        match (due, book) {
            (true, Some(b)) => {
                self.inner.bus.publish(&subjects::book(symbol), Event::Book(b));
                slot.published_at = Some(now);
                slot.dirty = false;
            }
            _ => slot.dirty = true,
        }
    }

    /// Candle updates are conflated: at most one per symbol per [`CANDLE_EVERY`], plus the final state of a bar
    /// when the next one starts. A chart needs no more, and the bus carries half as many messages.
    fn on_bar(&self, ctx: &SymbolCtx, bar: market_data::Bar, now: DateTime<Utc>) {
        let mut pending = ctx.bar.lock();
        let slot = pending.get_or_insert(PendingBar { bar, published_at: None, dirty: true });
        if bar.open_time > slot.bar.open_time && slot.dirty {
            // The previous minute is final: publish its last state before moving on.
            self.publish_bar(ctx, slot.bar);
        }
        if bar.open_time >= slot.bar.open_time {
            slot.bar = bar;
            slot.dirty = true;
        } else {
            // A correction or late trade for an earlier minute goes out as it is.
            self.publish_bar(ctx, bar);
            return;
        }
        let due = slot.published_at.is_none_or(|t| now - t >= CANDLE_EVERY);
        if due {
            self.publish_bar(ctx, slot.bar);
            slot.published_at = Some(now);
            slot.dirty = false;
        }
    }

    fn publish_bar(&self, ctx: &SymbolCtx, bar: market_data::Bar) {
        let candle = bar.to_candle(&ctx.symbol, Interval::M1);
        self.inner.bus.publish(&ctx.candles_subject, Event::Candle(candle));
    }

    /// Publishes bar and book updates held back by the conflation once their interval has passed.
    async fn flush_bars(&self) {
        let mut tick = tokio::time::interval(CANDLE_EVERY.to_std().unwrap_or(std::time::Duration::from_millis(250)));
        loop {
            tick.tick().await;
            let now = self.now();
            let symbols: Vec<Arc<SymbolCtx>> = self.inner.symbol_ctx.read().values().cloned().collect();
            for ctx in symbols {
                let mut pending = ctx.bar.lock();
                if let Some(slot) = pending.as_mut().filter(|p| p.dirty) {
                    self.publish_bar(&ctx, slot.bar);
                    slot.published_at = Some(now);
                    slot.dirty = false;
                }
            }
            let dirty: Vec<String> =
                self.inner.books.lock().iter().filter(|(_, b)| b.dirty).map(|(s, _)| s.clone()).collect();
            for symbol in dirty {
                let book = self.inner.processor.lock().book(&symbol, market_sim::PUBLISHED_DEPTH);
                if let Some(b) = book {
                    self.inner.bus.publish(&subjects::book(&symbol), Event::Book(b));
                }
                if let Some(slot) = self.inner.books.lock().get_mut(&symbol) {
                    slot.published_at = Some(now);
                    slot.dirty = false;
                }
            }
        }
    }

    async fn sample_rates(&self) {
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            let counts: BTreeMap<String, u64> = {
                let p = self.inner.processor.lock();
                p.symbols().filter_map(|s| p.stats(s).map(|st| (s.clone(), st.trades))).collect()
            };
            let mut rates = self.inner.rates.lock();
            for (s, n) in &counts {
                let prev = last.get(s).copied().unwrap_or(*n);
                let rate = (n - prev.min(*n)) as f64 / 5.0;
                metrics::gauge!("ts_md_trades_per_second", "symbol" => s.clone()).set(rate);
                rates.insert(s.clone(), rate);
            }
            last = counts;
        }
    }

    pub fn instruments(&self) -> Instruments {
        self.inner.processor.lock().instruments().clone()
    }

    /// Reads the in-memory tape, books and candles (`TickProcessor::last_trades`, `quote`, `book`, `candles`).
    /// Keep `f` short: the feed waits while it runs.
    pub fn read<R>(&self, f: impl FnOnce(&TickProcessor) -> R) -> R {
        f(&self.inner.processor.lock())
    }

    pub fn last_trade_ts(&self) -> Option<DateTime<Utc>> {
        let p = self.inner.processor.lock();
        p.symbols().filter_map(|s| p.last_trade(s).map(|t| t.receive_ts)).max()
    }

    pub fn source(&self) -> &'static str {
        self.inner.feed.name()
    }

    pub fn status(&self) -> FeedStatus {
        let rates = self.inner.rates.lock().clone();
        let (connection, transitions) = {
            let c = self.inner.connection.lock();
            (c.0.clone(), c.1.iter().cloned().collect())
        };
        let history_requests = self.inner.history.lock().clone();
        let p = self.inner.processor.lock();
        let symbols = p
            .symbols()
            .filter_map(|s| {
                p.stats(s).map(|st| {
                    (s.clone(), SymbolStatus { stats: st, trades_per_second: rates.get(s).copied().unwrap_or(0.0) })
                })
            })
            .collect();
        FeedStatus { source: self.inner.feed.name().to_string(), connection, transitions, history_requests, symbols }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use market_sim::SimConfig;
    use std::time::Duration;

    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test]
    async fn gaps_from_a_lossy_feed_are_backfilled() {
        let ins = Instruments::b3_defaults(Utc::now().date_naive());
        let market = SimMarket::new(ins, SimConfig::default());
        market.warm_up(Utc::now());
        let bus = Bus::new();
        let dc = DataCapture::start_sim(&market, bus, 7, Vec::new(), clock::WallClock::shared());
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..2_000 {
            market.step("PETR4", Utc::now());
        }
        until(|| {
            let st = dc.status();
            let p = &st.symbols["PETR4"].stats;
            p.gaps_detected > 10 && p.open_gaps.is_empty() && st.history_requests.pending.is_empty()
        })
        .await;
        let st = dc.status();
        let p = &st.symbols["PETR4"].stats;
        assert_eq!(p.missing_ids, 0, "every missing id came back");
        assert!(p.backfilled >= p.gaps_detected);
        assert!(st.history_requests.completed >= p.gaps_detected);
        assert_eq!(st.connection.as_ref().map(|c| c.market_data), Some(domain::broker::LinkState::Connected));
    }

    #[tokio::test]
    async fn the_feed_reconnects_with_backoff_and_repairs_what_it_missed() {
        use domain::broker::LinkState;
        let ins = Instruments::b3_defaults(Utc::now().date_naive());
        let market = SimMarket::new(ins, SimConfig::default());
        market.warm_up(Utc::now());
        let backoff = feed::Backoff::new(Duration::from_millis(20), Duration::from_millis(80));
        let sim = feed::SimFeed::with_backoff(market.clone(), 0, backoff);
        let dc = DataCapture::start_sim_feed(&market, sim.clone(), Bus::new(), Vec::new(), clock::WallClock::shared());
        let printer = market.clone();
        let printing = tokio::spawn(async move {
            loop {
                printer.step("PETR4", Utc::now());
                printer.step("VALE3", Utc::now());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let connected = || dc.status().transitions.last().is_some_and(|c| c.market_data == LinkState::Connected);
        until(connected).await;
        sim.cut("network unreachable");
        // The outage lasts until two reconnection attempts have failed, however slow the machine is.
        let failed_attempts = || {
            let st = dc.status();
            st.transitions
                .iter()
                .filter(|c| c.reason.as_deref().is_some_and(|r| r.starts_with("connect failed")))
                .count()
        };
        until(|| failed_attempts() >= 2).await;
        sim.restore();
        until(connected).await;
        // Prints go on until the first ones after the outage have revealed the gap in both symbols and it is repaired.
        until(|| {
            let st = dc.status();
            ["PETR4", "VALE3"].iter().all(|s| {
                let p = &st.symbols[*s].stats;
                p.gaps_detected >= 1 && p.missing_ids == 0
            }) && st.history_requests.pending.is_empty()
        })
        .await;
        printing.abort();

        let st = dc.status();
        let reasons: Vec<(LinkState, String)> =
            st.transitions.iter().map(|c| (c.market_data, c.reason.clone().unwrap_or_default())).collect();
        let lost = reasons.iter().position(|(s, r)| *s == LinkState::Disconnected && r.contains("link lost"));
        let lost = lost.unwrap_or_else(|| panic!("the drop is reported: {reasons:?}"));
        let after = &reasons[lost..];
        let retries: Vec<&String> =
            after.iter().filter(|(_, r)| r.starts_with("connect failed")).map(|(_, r)| r).collect();
        assert!(retries.len() >= 2, "attempts during the outage are reported: {reasons:?}");
        assert!(retries[0].contains("retrying in 40 ms") && retries[1].contains("retrying in 80 ms"), "{retries:?}");
        assert!(after.iter().any(|(s, _)| *s == LinkState::Connecting));
        assert_eq!(after.last().map(|(s, _)| *s), Some(LinkState::Connected), "{reasons:?}");
        for symbol in ["PETR4", "VALE3"] {
            let p = &st.symbols[symbol].stats;
            assert!(p.gaps_detected >= 1, "{symbol}: the outage left a gap");
            assert_eq!(p.missing_ids, 0, "{symbol}: every trade missed during the outage was backfilled");
            assert!(!dc.read(|pr| pr.book_is_stale(symbol)), "{symbol}: the book was re-snapshotted");
        }
    }

    #[tokio::test]
    async fn the_book_follows_incremental_updates() {
        let ins = Instruments::b3_defaults(Utc::now().date_naive());
        let market = SimMarket::new(ins, SimConfig::default());
        market.warm_up(Utc::now());
        let dc = DataCapture::start_sim(&market, Bus::new(), 0, Vec::new(), clock::WallClock::shared());
        tokio::time::sleep(Duration::from_millis(20)).await;
        for _ in 0..(market_sim::SNAPSHOT_EVERY as usize + 300) {
            market.step("VALE3", Utc::now());
        }
        let expected = market.book("VALE3", 10, Utc::now()).unwrap();
        until(|| dc.read(|p| p.book("VALE3", 10)).is_some_and(|b| b.bids == expected.bids && b.asks == expected.asks))
            .await;
        assert!(!dc.read(|p| p.book_is_stale("VALE3")));
        assert_eq!(dc.status().symbols["VALE3"].stats.book_gaps, 0);
    }

    #[tokio::test]
    async fn replay_plays_recorded_trades_through_the_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let ins = Instruments::b3_defaults(Utc::now().date_naive());
        let market = SimMarket::new(ins.clone(), SimConfig::default());
        let now = Utc::now();
        let recorded: Vec<Trade> = (0..300).flat_map(|_| market.step("VALE3", now)).collect();
        market_store::ParquetStore::new(dir.path()).write_trades(&recorded).unwrap();
        let feed = feed::ReplayFeed::open(dir.path().join("market"), feed::Speed::Max).unwrap();
        assert_eq!(feed.len(), recorded.len());
        let bus = Bus::new();
        let mut sub = bus.subscribe("md.trades.VALE3", 100_000).unwrap();
        let dc = DataCapture::start(feed, ins, bus, Vec::new(), clock::WallClock::shared());
        until(|| {
            dc.status().connection.as_ref().is_some_and(|c| c.market_data == domain::broker::LinkState::Disconnected)
        })
        .await;
        let st = dc.status();
        assert_eq!(st.source, "replay");
        assert_eq!(st.symbols["VALE3"].stats.trades, recorded.len() as u64);
        assert!(st.connection.unwrap().reason.unwrap().contains("end of replay"));
        let mut n = 0;
        while sub.try_recv().is_some() {
            n += 1;
        }
        assert_eq!(n, recorded.len(), "every replayed trade is published on the bus");
    }
}
