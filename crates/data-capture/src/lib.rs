//! Data Capture: consumes a feed's events, runs them through the [`TickProcessor`], and answers queries about the
//! tape, the book, candles and the feed's health.
//!
//! Today the feed is the simulated market's broadcast stream; [`recorder::Recorder`] writes what is processed to
//! Parquet. The feed-adapter trait with replay follows (see the Data Capture issue).

use bus::{subjects, Bus, Event};
pub mod recorder;

use chrono::{DateTime, Utc};
use market_data::TradeKind;
use market_data::{BookSnapshot, Candle, Interval, Outcome, ProcessorConfig, Quote, SymbolStats, TickProcessor, Trade};
use market_sim::{MarketEvent, SimMarket};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

#[derive(Debug, Clone, Serialize)]
pub struct FeedStatus {
    pub source: String,
    /// Per-dimension connection state, as the broker DLL reports it.
    pub connection: domain::broker::BrokerConnection,
    pub events_lagged: u64,
    pub symbols: BTreeMap<String, SymbolStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SymbolStatus {
    #[serde(flatten)]
    pub stats: SymbolStats,
    /// Trades per second over the last sampling window.
    pub trades_per_second: f64,
}

struct Inner {
    processor: Mutex<TickProcessor>,
    bus: Bus,
    rates: Mutex<BTreeMap<String, f64>>,
    lagged: Mutex<u64>,
    source: String,
}

#[derive(Clone)]
pub struct DataCapture {
    inner: Arc<Inner>,
}

impl DataCapture {
    /// Starts consuming the simulated market. Seeds the tape and book with what the market already has.
    /// Processed trades, candles, books and quotes are published on `bus` under `md.*` subjects.
    pub fn start_sim(market: &SimMarket, bus: Bus) -> DataCapture {
        let processor = TickProcessor::new(market.instruments().clone(), ProcessorConfig::default());
        let dc = DataCapture {
            inner: Arc::new(Inner {
                processor: Mutex::new(processor),
                bus,
                rates: Mutex::new(BTreeMap::new()),
                lagged: Mutex::new(0),
                source: "sim".into(),
            }),
        };
        let now = Utc::now();
        {
            let mut p = dc.inner.processor.lock();
            for ins in market.instruments().iter() {
                if let Some(t) = market.last_trade(&ins.symbol) {
                    p.on_trade(t);
                }
                if let Some(b) = market.book(&ins.symbol, market_sim::PUBLISHED_DEPTH, now) {
                    p.on_book(b);
                }
            }
        }
        let mut rx = market.subscribe();
        let this = dc.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => this.on_event(ev),
                    Err(RecvError::Lagged(n)) => {
                        *this.inner.lagged.lock() += n;
                        metrics::counter!("ts_md_events_lagged_total").increment(n);
                        tracing::warn!(skipped = n, "data capture lagged behind the feed");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        let sampler = dc.clone();
        tokio::spawn(async move { sampler.sample_rates().await });
        dc
    }

    fn on_event(&self, ev: MarketEvent) {
        match ev {
            MarketEvent::Trade(t) => {
                let symbol = t.symbol.clone();
                let received = t.receive_ts;
                let for_bus = t.clone();
                let processed = self.inner.processor.lock().on_trade(t);
                if processed.outcome.is_accepted() {
                    let kind = for_bus.kind;
                    self.inner.bus.publish(&subjects::trades(&symbol), Event::Trade(for_bus));
                    if let (Some(bar), TradeKind::New | TradeKind::Edit | TradeKind::Cancel) = (processed.bar, kind) {
                        let candle = bar.to_candle(&symbol, market_data::Interval::M1);
                        self.inner.bus.publish(&subjects::candles(&symbol), Event::Candle(candle));
                    }
                }
                let label = match &processed.outcome {
                    Outcome::New { gap: Some(_) } => "gap",
                    Outcome::New { gap: None } => "new",
                    Outcome::Backfilled => "backfilled",
                    Outcome::Edited | Outcome::Canceled => "correction",
                    Outcome::Duplicate => "duplicate",
                    Outcome::Invalid(_) => "invalid",
                };
                metrics::counter!("ts_md_trades_total", "symbol" => symbol, "outcome" => label).increment(1);
                let latency = (Utc::now() - received).num_nanoseconds().unwrap_or(0).max(0) as f64 / 1e9;
                metrics::histogram!("ts_md_tick_to_process_seconds").record(latency);
            }
            MarketEvent::Book(b) => {
                let symbol = b.symbol.clone();
                let quote = b.quote();
                self.inner.bus.publish(&subjects::book(&symbol), Event::Book(b.clone()));
                self.inner.bus.publish(&subjects::quotes(&symbol), Event::Quote(quote));
                self.inner.processor.lock().on_book(b);
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
                rates.insert(s.clone(), (n - prev.min(*n)) as f64 / 5.0);
            }
            last = counts;
        }
    }

    pub fn instruments(&self) -> domain::Instruments {
        self.inner.processor.lock().instruments().clone()
    }

    pub fn trades(&self, symbol: &str, limit: usize) -> Vec<Trade> {
        self.inner.processor.lock().last_trades(symbol, limit)
    }

    pub fn quote(&self, symbol: &str) -> Option<Quote> {
        self.inner.processor.lock().quote(symbol)
    }

    pub fn book(&self, symbol: &str, depth: usize) -> Option<BookSnapshot> {
        self.inner.processor.lock().book(symbol, depth)
    }

    pub fn candles(
        &self,
        symbol: &str,
        interval: Interval,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Vec<Candle> {
        self.inner.processor.lock().candles(symbol, interval, from, to, limit)
    }

    pub fn last_trade_ts(&self) -> Option<DateTime<Utc>> {
        let p = self.inner.processor.lock();
        p.symbols().filter_map(|s| p.last_trade(s).map(|t| t.receive_ts)).max()
    }

    pub fn status(&self) -> FeedStatus {
        use domain::broker::{BrokerConnection, LinkState};
        let rates = self.inner.rates.lock().clone();
        let p = self.inner.processor.lock();
        let symbols = p
            .symbols()
            .filter_map(|s| {
                p.stats(s).map(|st| {
                    (s.clone(), SymbolStatus { stats: st, trades_per_second: rates.get(s).copied().unwrap_or(0.0) })
                })
            })
            .collect();
        FeedStatus {
            source: self.inner.source.clone(),
            // The simulated market is in-process: every dimension is connected while it runs.
            connection: BrokerConnection {
                login: LinkState::Connected,
                routing: LinkState::Connected,
                market_data: LinkState::Connected,
            },
            events_lagged: *self.inner.lagged.lock(),
            symbols,
        }
    }
}
