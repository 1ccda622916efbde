//! The backtest engine: market data from the Parquet store, generated data or B3's trade files, replayed in
//! timestamp order through a strategy, the real Order Manager (in memory), the paper broker's matching rules and a
//! B3 cost model, in simulated time. The same inputs give the same result, byte for byte.
//!
//! - [`source`]: the data and the merge into one stream;
//! - [`engine`]: the event loop and the strategy's context;
//! - [`venue`]: the replayed market as liquidity (fill model);
//! - [`ledger`], [`costs`], [`metrics`]: the books, B3 costs and taxes, and the figures;
//! - [`report`]: `summary.json`, `report.html`, orders, fills and positions as CSV and Parquet.

pub mod chart;
pub mod costs;
pub mod engine;
pub mod event;
pub mod jobs;
pub mod ledger;
pub mod metrics;
pub mod report;
pub mod source;
pub mod venue;

pub use engine::{Engine, Latency, Settings};
pub use report::Summary;
pub use source::{DataError, DateRange, Feed, SymbolTable};

use domain::calendar::TradingCalendar;
use domain::order::Order;
use domain::Symbol;
use event::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use strategy::params::Params;

/// A run: which strategy, on what, with which settings.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub strategy: String,
    pub params: Params,
    pub symbols: Vec<Symbol>,
    pub range: DateRange,
    pub settings: Settings,
    pub calendar: TradingCalendar,
}

impl RunSpec {
    pub fn new(strategy: &str, symbols: Vec<Symbol>) -> RunSpec {
        RunSpec {
            strategy: strategy.to_string(),
            params: Params::new(),
            symbols,
            range: DateRange::default(),
            settings: Settings::default(),
            calendar: TradingCalendar::b3_regular(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error(transparent)]
    Strategy(#[from] strategy::kinds::BuildError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("no market data for {symbols} in the range given")]
    NoData { symbols: String },
}

/// How the caller follows and stops a run.
pub struct Control<'a> {
    /// Set to stop: the run ends at the next check and reports what it has (`complete: false`).
    pub stop: &'a AtomicBool,
    /// Called about every 64k events with (events done, events expected).
    pub progress: &'a mut dyn FnMut(u64, u64),
}

/// What a run produced: the summary and everything the report files are made of.
pub struct Outcome {
    pub summary: Summary,
    pub ledger: ledger::Ledger,
    pub orders: Vec<Order>,
    pub symbols: SymbolTable,
    /// Wall time of the event loop and of reading the data (not part of the summary: it is not deterministic).
    pub timing: Timing,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    /// Wall time from the first read to the last event processed.
    pub total: Duration,
    /// Of which reading and decoding the data (the sources' batches).
    pub reading: Duration,
    pub events: u64,
}

impl Timing {
    /// The engine's own time: the total without reading the data.
    pub fn run_phase(&self) -> Duration {
        self.total.saturating_sub(self.reading)
    }

    /// Events per second of the run phase.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.run_phase().as_secs_f64().max(1e-9)
    }
}

/// Checks the strategy and its parameters before any data is read.
pub fn check(spec: &RunSpec) -> Result<(), BacktestError> {
    strategy::kinds::build(&spec.strategy, &spec.symbols, &spec.params)?;
    Ok(())
}

/// Runs `spec` over `feed`.
pub fn run(spec: &RunSpec, feed: &mut Feed, control: Control<'_>) -> Result<Outcome, BacktestError> {
    let strategy = strategy::kinds::build(&spec.strategy, &spec.symbols, &spec.params)?;
    run_strategy(spec, strategy, feed, control)
}

/// Runs a strategy that is not in the registry (a test's, a user's own) over `feed`; `spec.strategy` names it in
/// the report.
pub fn run_strategy(
    spec: &RunSpec,
    strategy: Box<dyn strategy::api::Strategy>,
    feed: &mut Feed,
    control: Control<'_>,
) -> Result<Outcome, BacktestError> {
    let expected = feed.expected_events();
    let mut out = drive(spec, strategy, expected, || feed.next_event(), control)?;
    out.timing.reading = feed.reading_time();
    Ok(out)
}

/// Runs `spec` over events already in memory (a parameter sweep shares one copy between its runs).
pub fn run_events(spec: &RunSpec, events: &[Event], control: Control<'_>) -> Result<Outcome, BacktestError> {
    let strategy = strategy::kinds::build(&spec.strategy, &spec.symbols, &spec.params)?;
    let mut it = events.iter();
    drive(spec, strategy, events.len() as u64, || Ok(it.next().cloned()), control)
}

/// Reads a whole feed into memory (for sweeps).
pub fn collect(feed: &mut Feed) -> Result<Vec<Event>, DataError> {
    let mut v = Vec::with_capacity(feed.expected_events().min(50_000_000) as usize);
    while let Some(e) = feed.next_event()? {
        v.push(e);
    }
    Ok(v)
}

fn drive(
    spec: &RunSpec,
    strategy: Box<dyn strategy::api::Strategy>,
    expected: u64,
    mut next: impl FnMut() -> Result<Option<Event>, DataError>,
    control: Control<'_>,
) -> Result<Outcome, BacktestError> {
    let table = SymbolTable::new(&spec.symbols)?;
    let started = Instant::now();
    let Some(first) = next()? else {
        let symbols = table.symbols().iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
        return Err(BacktestError::NoData { symbols });
    };
    let mut engine = Engine::new(strategy, table.clone(), &spec.settings, spec.calendar.clone(), first.ts)?;
    engine.on_event(&first);
    let mut done = 1u64;
    let mut complete = true;
    loop {
        // The stop flag and the progress callback cost nothing per event: they run every 64k.
        if done & 0xFFFF == 0 {
            (control.progress)(done, expected);
            if control.stop.load(Ordering::Relaxed) {
                complete = false;
                break;
            }
        }
        let Some(e) = next()? else { break };
        engine.on_event(&e);
        done += 1;
    }
    engine.finish();
    (control.progress)(done, expected.max(done));
    let timing = Timing { total: started.elapsed(), reading: Duration::ZERO, events: done };
    Ok(report::outcome(spec, engine, table, done, complete, timing))
}
