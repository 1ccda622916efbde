//! Where a backtest's events come from, and how several sources become one stream in time order.
//!
//! Data is cut by São Paulo trading date (the store's partitions already are): each date is a small k-way merge of
//! its sources (one per dataset and symbol, or per B3 file), and dates run one after the other. Sources stream in
//! batches, so memory holds a batch per source, not the run's data.

pub mod b3;
pub mod signals;
pub mod store;

use crate::event::{Event, SymbolIdx};
use chrono::NaiveDate;
use domain::Symbol;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> DataError {
        DataError::File { path: path.into(), message: message.to_string() }
    }
}

/// Inclusive trading dates; `None` is open-ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DateRange {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
    }
}

/// The run's symbols, in the order given: an event's `sym` indexes this table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolTable(Vec<Symbol>);

impl SymbolTable {
    pub fn new(symbols: &[Symbol]) -> Result<SymbolTable, DataError> {
        if symbols.is_empty() || symbols.len() > usize::from(SymbolIdx::MAX) {
            return Err(DataError::Invalid(format!("between 1 and {} symbols, not {}", SymbolIdx::MAX, symbols.len())));
        }
        let mut v: Vec<Symbol> = Vec::with_capacity(symbols.len());
        for s in symbols {
            if !v.contains(s) {
                v.push(*s);
            }
        }
        Ok(SymbolTable(v))
    }

    pub fn index(&self, s: &str) -> Option<SymbolIdx> {
        self.0.iter().position(|x| x.as_str() == s).map(|i| i as SymbolIdx)
    }

    pub fn symbol(&self, i: SymbolIdx) -> Symbol {
        self.0[usize::from(i)]
    }

    pub fn symbols(&self) -> &[Symbol] {
        &self.0
    }
}

/// A stream of events in time order, in batches.
pub trait Source: Send {
    /// Appends the next events to `out` (at least one unless the source is exhausted); false when exhausted.
    fn next_batch(&mut self, out: &mut VecDeque<Event>) -> Result<bool, DataError>;
}

/// Events already in memory (a B3 file's day, a test's handful).
pub struct VecSource(Option<Vec<Event>>);

impl VecSource {
    /// `events` must be in time order (ties keep their order).
    pub fn new(events: Vec<Event>) -> VecSource {
        VecSource(Some(events))
    }
}

impl Source for VecSource {
    fn next_batch(&mut self, out: &mut VecDeque<Event>) -> Result<bool, DataError> {
        match self.0.take() {
            Some(v) if !v.is_empty() => {
                out.extend(v);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

struct Cursor {
    source: Box<dyn Source>,
    buf: VecDeque<Event>,
    done: bool,
}

impl Cursor {
    #[inline]
    fn head(&mut self, reading: &mut Duration) -> Result<Option<i64>, DataError> {
        if self.buf.is_empty() && !self.done {
            // Once per batch (tens of thousands of events): timing it costs nothing per event.
            let t = Instant::now();
            while self.buf.is_empty() && !self.done {
                self.done = !self.source.next_batch(&mut self.buf)?;
            }
            *reading += t.elapsed();
        }
        Ok(self.buf.front().map(|e| e.ts))
    }
}

/// All the run's sources, grouped by trading date: the events come out in timestamp order, ties in the order the
/// sources were added (so the same inputs always give the same sequence).
pub struct Feed {
    days: BTreeMap<NaiveDate, Vec<Box<dyn Source>>>,
    current: Vec<Cursor>,
    /// Events the sources expect to yield (for progress), when they know.
    expected: u64,
    last_ts: i64,
    reading: Duration,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    pub fn new() -> Feed {
        Feed { days: BTreeMap::new(), current: Vec::new(), expected: 0, last_ts: i64::MIN, reading: Duration::ZERO }
    }

    pub fn add(&mut self, date: NaiveDate, source: Box<dyn Source>, expected_events: u64) {
        self.days.entry(date).or_default().push(source);
        self.expected += expected_events;
    }

    pub fn expected_events(&self) -> u64 {
        self.expected
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty() && self.current.is_empty()
    }

    pub fn dates(&self) -> impl Iterator<Item = &NaiveDate> {
        self.days.keys()
    }

    /// Time spent so far reading and decoding the sources' batches.
    pub fn reading_time(&self) -> Duration {
        self.reading
    }

    /// The next event in time order; `None` at the end of the data.
    pub fn next_event(&mut self) -> Result<Option<Event>, DataError> {
        loop {
            if self.current.len() == 1 {
                // One source for the day (the usual backtest of one symbol): no comparisons.
                let c = &mut self.current[0];
                if c.head(&mut self.reading)?.is_some() {
                    return Ok(self.emit(0));
                }
                self.current.clear();
            } else if !self.current.is_empty() {
                let mut best: Option<(i64, usize)> = None;
                for i in 0..self.current.len() {
                    if let Some(ts) = self.current[i].head(&mut self.reading)? {
                        if best.is_none_or(|(b, _)| ts < b) {
                            best = Some((ts, i));
                        }
                    }
                }
                match best {
                    Some((_, i)) => return Ok(self.emit(i)),
                    None => self.current.clear(),
                }
            }
            let Some((_, sources)) = self.days.pop_first() else { return Ok(None) };
            self.current =
                sources.into_iter().map(|source| Cursor { source, buf: VecDeque::new(), done: false }).collect();
        }
    }

    fn emit(&mut self, i: usize) -> Option<Event> {
        let mut e = self.current[i].buf.pop_front()?;
        // A source whose rows go back in time by a hair (receive-order jitter a sort did not catch) must not move
        // the clock backwards: the event takes the time already reached.
        if e.ts < self.last_ts {
            e.ts = self.last_ts;
        }
        self.last_ts = e.ts;
        Some(e)
    }
}

/// The São Paulo trading date of a timestamp in nanoseconds.
pub fn trading_date_of(ts: i64) -> NaiveDate {
    clock::from_nanos(ts).with_timezone(&chrono_tz::America::Sao_Paulo).date_naive()
}
