//! The Parquet store the recorder (and `tradingsystem market generate`) writes:
//! `market/<trades|quotes|book_snapshots>/date=YYYY-MM-DD/symbol=SYM/part-NNNN.parquet`.
//!
//! Each (dataset, date, symbol) partition becomes one source. The files' row-group statistics (no data decoded)
//! give the row count and say whether parts and row groups follow each other in time: if so the partition streams
//! batch by batch; if not (parts written out of order, no statistics) it is read whole and sorted, which is
//! correct, only slower.

use super::{DataError, DateRange, Feed, Source, SymbolTable, VecSource};
use crate::event::{level_or_none, Body, BookLevels, Event, SymbolIdx};
use arrow_array::types::Int8Type;
use arrow_array::{
    Array, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt8Array,
};
use chrono::NaiveDate;
use domain::{Price, Qty};
use market_data::{Aggressor, Level};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::statistics::Statistics;
use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

const BATCH_ROWS: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dataset {
    Trades,
    Quotes,
    Books,
}

impl Dataset {
    fn dir(self) -> &'static str {
        match self {
            Dataset::Trades => "trades",
            Dataset::Quotes => "quotes",
            Dataset::Books => "book_snapshots",
        }
    }

    fn ts_column(self) -> &'static str {
        match self {
            Dataset::Trades => "exchange_ts",
            _ => "ts",
        }
    }
}

/// What the store holds for a run, before reading it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreSummary {
    pub partitions: usize,
    pub rows: u64,
    pub unsorted_partitions: usize,
}

/// `dir` is the store's `market/` directory, or a directory holding one.
pub fn market_dir(dir: &Path) -> PathBuf {
    let inner = dir.join("market");
    if inner.is_dir() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// Adds the store's partitions for `symbols` and `range` to `feed`.
pub fn add_store(
    feed: &mut Feed,
    dir: &Path,
    symbols: &SymbolTable,
    range: DateRange,
) -> Result<StoreSummary, DataError> {
    let root = market_dir(dir);
    if !root.is_dir() {
        return Err(DataError::file(&root, "no such directory"));
    }
    let mut summary = StoreSummary::default();
    for dataset in [Dataset::Trades, Dataset::Quotes, Dataset::Books] {
        let ds_dir = root.join(dataset.dir());
        if !ds_dir.is_dir() {
            continue;
        }
        for (date, date_dir) in subdirs(&ds_dir, "date=")? {
            let Ok(date) = NaiveDate::parse_from_str(&date, "%Y-%m-%d") else { continue };
            if !range.contains(date) {
                continue;
            }
            for (symbol, sym_dir) in subdirs(&date_dir, "symbol=")? {
                let Some(sym) = symbols.index(&symbol) else { continue };
                let parts = part_files(&sym_dir)?;
                if parts.is_empty() {
                    continue;
                }
                let (rows, sorted) = scan_times(&parts, dataset)?;
                summary.partitions += 1;
                summary.rows += rows;
                let source: Box<dyn Source> = if sorted {
                    Box::new(PartSource { dataset, sym, parts: parts.into(), reader: None, book: None })
                } else {
                    summary.unsorted_partitions += 1;
                    let mut all = PartSource { dataset, sym, parts: parts.into(), reader: None, book: None };
                    let mut events = VecDeque::new();
                    while all.next_batch(&mut events)? {}
                    let mut events: Vec<Event> = events.into();
                    events.sort_by_key(|e| e.ts);
                    Box::new(VecSource::new(events))
                };
                // Book rows are levels, not events: the count is an upper bound, good enough for a progress bar.
                feed.add(date, source, rows);
            }
        }
    }
    Ok(summary)
}

fn subdirs(dir: &Path, prefix: &str) -> Result<Vec<(String, PathBuf)>, DataError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::file(dir, e))? {
        let e = e.map_err(|e| DataError::file(dir, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(value) = name.strip_prefix(prefix) {
            if e.path().is_dir() {
                out.push((value.to_string(), e.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn part_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::file(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "parquet")
                && p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .collect();
    out.sort();
    Ok(out)
}

fn open(path: &Path) -> Result<ParquetRecordBatchReader, DataError> {
    let file = File::open(path).map_err(|e| DataError::file(path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DataError::file(path, e))?;
    b.with_batch_size(BATCH_ROWS).build().map_err(|e| DataError::file(path, e))
}

/// Row count of the partition and whether its parts and row groups follow each other in time, from the files'
/// statistics (no data is decoded). Inside a row group the rows are in the order the recorder received them; a
/// row a hair earlier than the one before it is replayed at the time already reached (the clock never goes back).
fn scan_times(parts: &[PathBuf], dataset: Dataset) -> Result<(u64, bool), DataError> {
    let (mut rows, mut last_max, mut sorted) = (0u64, i64::MIN, true);
    for p in parts {
        let file = File::open(p).map_err(|e| DataError::file(p, e))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DataError::file(p, e))?;
        let meta = b.metadata();
        let schema = meta.file_metadata().schema_descr();
        let col = (0..schema.num_columns())
            .find(|&i| schema.column(i).name() == dataset.ts_column())
            .ok_or_else(|| DataError::file(p, format!("column {} missing", dataset.ts_column())))?;
        for rg in meta.row_groups() {
            rows += rg.num_rows().max(0) as u64;
            match rg.column(col).statistics() {
                Some(Statistics::Int64(st)) => match (st.min_opt(), st.max_opt()) {
                    (Some(&min), Some(&max)) => {
                        sorted &= min >= last_max;
                        last_max = last_max.max(max);
                    }
                    _ => sorted = false,
                },
                // Without statistics nothing is known: sort.
                _ => sorted = false,
            }
        }
    }
    Ok((rows, sorted))
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T, DataError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| DataError::file(path, format!("column {name} missing or of the wrong type")))
}

/// A dictionary column's values per row, as indexes into its (short) value list.
fn dict<'a>(
    b: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<(&'a DictionaryArray<Int8Type>, Vec<String>), DataError> {
    let d = column::<DictionaryArray<Int8Type>>(b, name, path)?;
    let values = d
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| DataError::file(path, format!("column {name} is not a string dictionary")))?;
    Ok((d, values.iter().map(|v| v.unwrap_or_default().to_string()).collect()))
}

fn price(v: f64, path: &Path) -> Result<Price, DataError> {
    Price::from_f64(v).ok_or_else(|| DataError::file(path, format!("price {v} is not a 4-decimal number")))
}

/// One partition's parts, read in order, batch by batch.
struct PartSource {
    dataset: Dataset,
    sym: SymbolIdx,
    parts: VecDeque<PathBuf>,
    reader: Option<(PathBuf, ParquetRecordBatchReader)>,
    /// A book snapshot whose rows may continue in the next batch.
    book: Option<(i64, BookLevels)>,
}

impl Source for PartSource {
    fn next_batch(&mut self, out: &mut VecDeque<Event>) -> Result<bool, DataError> {
        loop {
            if self.reader.is_none() {
                let Some(p) = self.parts.pop_front() else {
                    // The last snapshot ends with the data.
                    if let Some((ts, levels)) = self.book.take() {
                        out.push_back(Event { ts, sym: self.sym, body: Body::Book(Box::new(levels)) });
                        return Ok(true);
                    }
                    return Ok(false);
                };
                let r = open(&p)?;
                self.reader = Some((p, r));
            }
            let Some((path, reader)) = self.reader.as_mut() else { continue };
            let Some(batch) = reader.next() else {
                self.reader = None;
                continue;
            };
            let path = path.clone();
            let b = batch.map_err(|e| DataError::file(&path, e))?;
            let before = out.len();
            match self.dataset {
                Dataset::Trades => trades(&b, self.sym, &path, out)?,
                Dataset::Quotes => quotes(&b, self.sym, &path, out)?,
                Dataset::Books => books(&b, self.sym, &path, &mut self.book, out)?,
            }
            if out.len() > before {
                return Ok(true);
            }
        }
    }
}

fn trades(b: &RecordBatch, sym: SymbolIdx, path: &Path, out: &mut VecDeque<Event>) -> Result<(), DataError> {
    let prices = column::<Float64Array>(b, "price", path)?;
    let qtys = column::<Int64Array>(b, "quantity", path)?;
    let ts = column::<TimestampNanosecondArray>(b, "exchange_ts", path)?;
    let (aggr, aggr_values) = dict(b, "aggressor", path)?;
    let aggr_of: Vec<Aggressor> = aggr_values
        .iter()
        .map(|v| match v.as_str() {
            "B" => Aggressor::Buy,
            "S" => Aggressor::Sell,
            _ => Aggressor::Unknown,
        })
        .collect();
    let (kind, kind_values) = dict(b, "kind", path)?;
    // Corrections (edits, cancels) are not prints a strategy could have traded against.
    let is_new: Vec<bool> = kind_values.iter().map(|v| v == "new").collect();
    for i in 0..b.num_rows() {
        let k = kind.keys().value(i) as usize;
        if !is_new.get(k).copied().unwrap_or(false) {
            continue;
        }
        let a = aggr.keys().value(i) as usize;
        out.push_back(Event {
            ts: ts.value(i),
            sym,
            body: Body::Trade {
                price: price(prices.value(i), path)?,
                quantity: Qty(qtys.value(i)),
                aggressor: aggr_of.get(a).copied().unwrap_or(Aggressor::Unknown),
            },
        });
    }
    Ok(())
}

fn quotes(b: &RecordBatch, sym: SymbolIdx, path: &Path, out: &mut VecDeque<Event>) -> Result<(), DataError> {
    let ts = column::<TimestampNanosecondArray>(b, "ts", path)?;
    let bp = column::<Float64Array>(b, "bid_price", path)?;
    let bq = column::<Int64Array>(b, "bid_quantity", path)?;
    let ap = column::<Float64Array>(b, "ask_price", path)?;
    let aq = column::<Int64Array>(b, "ask_quantity", path)?;
    let side = |p: &Float64Array, q: &Int64Array, i: usize| -> Result<Level, DataError> {
        if p.is_null(i) || q.is_null(i) {
            return Ok(level_or_none(None));
        }
        Ok(level_or_none(Some(Level { price: price(p.value(i), path)?, quantity: Qty(q.value(i)) })))
    };
    for i in 0..b.num_rows() {
        out.push_back(Event {
            ts: ts.value(i),
            sym,
            body: Body::Quote { bid: side(bp, bq, i)?, ask: side(ap, aq, i)? },
        });
    }
    Ok(())
}

fn books(
    b: &RecordBatch,
    sym: SymbolIdx,
    path: &Path,
    pending: &mut Option<(i64, BookLevels)>,
    out: &mut VecDeque<Event>,
) -> Result<(), DataError> {
    let ts = column::<TimestampNanosecondArray>(b, "ts", path)?;
    let (side, side_values) = dict(b, "side", path)?;
    let is_bid: Vec<bool> = side_values.iter().map(|v| v == "bid").collect();
    let levels = column::<UInt8Array>(b, "level", path)?;
    let prices = column::<Float64Array>(b, "price", path)?;
    let qtys = column::<Int64Array>(b, "quantity", path)?;
    for i in 0..b.num_rows() {
        let t = ts.value(i);
        // A snapshot is the run of rows with one timestamp; level 0 also starts one (two books in the same ns).
        let new_snapshot = match pending {
            Some((pt, lv)) => *pt != t || (levels.value(i) == 0 && !lv.bids.is_empty() && !lv.asks.is_empty()),
            None => true,
        };
        if new_snapshot {
            if let Some((pt, lv)) = pending.take() {
                out.push_back(Event { ts: pt, sym, body: Body::Book(Box::new(lv)) });
            }
            *pending = Some((t, BookLevels::default()));
        }
        let level = Level { price: price(prices.value(i), path)?, quantity: Qty(qtys.value(i)) };
        if let Some((_, lv)) = pending.as_mut() {
            if is_bid.get(side.keys().value(i) as usize).copied().unwrap_or(false) {
                lv.bids.push(level);
            } else {
                lv.asks.push(level);
            }
        }
    }
    Ok(())
}
