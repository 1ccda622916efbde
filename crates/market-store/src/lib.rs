//! Parquet time series of market data.
//!
//! Layout: `$TS_DATA_DIR/market/<dataset>/date=YYYY-MM-DD/symbol=SYM/part-NNNN.parquet`, with datasets `trades`,
//! `quotes`, `book_snapshots` and `candles`, and `date` the São Paulo trading date. Columns are typed: timestamps
//! are `timestamp[ns, UTC]`, prices `float64` (exact for B3's 4-decimal prices), quantities `int64`, the aggressor
//! a dictionary string; snappy compression. `date` and `symbol` live in the Hive-style `key=value` directories, not
//! repeated inside the files, so pyarrow, polars and DuckDB read a whole tree as one table with those two columns.
//!
//! Every file is written to a hidden temporary name in its partition, synced, then renamed into place and the
//! directory synced: a crash leaves either no file or a complete one, never a half-written `part-*.parquet`.

use arrow_array::builder::{Float64Builder, Int64Builder};
use arrow_array::types::Int8Type;
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
    UInt32Array, UInt64Array, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::{Price, Qty};
use market_data::{Aggressor, BookSnapshot, Candle, Quote, Trade, TradeKind};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("parquet error on {path}: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

fn pq<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::Parquet { path: path.to_path_buf(), message: e.to_string() }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    Trades,
    Quotes,
    BookSnapshots,
    Candles,
}

impl Dataset {
    pub const ALL: [Dataset; 4] = [Dataset::Trades, Dataset::Quotes, Dataset::BookSnapshots, Dataset::Candles];

    pub fn dir_name(self) -> &'static str {
        match self {
            Dataset::Trades => "trades",
            Dataset::Quotes => "quotes",
            Dataset::BookSnapshots => "book_snapshots",
            Dataset::Candles => "candles",
        }
    }
}

/// The trading date of a timestamp (São Paulo).
pub fn trading_date(ts: DateTime<Utc>) -> NaiveDate {
    ts.with_timezone(&chrono_tz::America::Sao_Paulo).date_naive()
}

pub fn partition_dir(root: &Path, dataset: Dataset, date: NaiveDate, symbol: &str) -> PathBuf {
    root.join("market")
        .join(dataset.dir_name())
        .join(format!("date={}", date.format("%Y-%m-%d")))
        .join(format!("symbol={symbol}"))
}

fn ts_ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

fn from_ns(ns: i64) -> DateTime<Utc> {
    Utc.timestamp_nanos(ns)
}

fn utc_ns() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8))
}

pub fn trades_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("trade_id", DataType::UInt64, false),
        Field::new("price", DataType::Float64, false),
        Field::new("quantity", DataType::Int64, false),
        Field::new("aggressor", dict(), false),
        Field::new("buyer_agent", DataType::UInt32, false),
        Field::new("seller_agent", DataType::UInt32, false),
        Field::new("exchange_ts", utc_ns(), false),
        Field::new("receive_ts", utc_ns(), false),
        Field::new("kind", dict(), false),
    ]))
}

pub fn quotes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", utc_ns(), false),
        Field::new("bid_price", DataType::Float64, true),
        Field::new("bid_quantity", DataType::Int64, true),
        Field::new("ask_price", DataType::Float64, true),
        Field::new("ask_quantity", DataType::Int64, true),
    ]))
}

pub fn books_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", utc_ns(), false),
        Field::new("side", dict(), false),
        Field::new("level", DataType::UInt8, false),
        Field::new("price", DataType::Float64, false),
        Field::new("quantity", DataType::Int64, false),
    ]))
}

pub fn candles_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("interval", dict(), false),
        Field::new("open_time", utc_ns(), false),
        Field::new("open", DataType::Float64, false),
        Field::new("high", DataType::Float64, false),
        Field::new("low", DataType::Float64, false),
        Field::new("close", DataType::Float64, false),
        Field::new("volume", DataType::Int64, false),
        Field::new("trade_count", DataType::UInt64, false),
    ]))
}

fn dict_col<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(values.collect::<DictionaryArray<Int8Type>>())
}

fn ts_col(values: impl Iterator<Item = DateTime<Utc>>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(values.map(ts_ns).collect::<Vec<_>>()).with_timezone("UTC"))
}

fn px(p: Price) -> f64 {
    p.to_f64()
}

fn batch(schema: SchemaRef, cols: Vec<ArrayRef>) -> Result<RecordBatch, String> {
    RecordBatch::try_new(schema, cols).map_err(|e| e.to_string())
}

fn kind_str(k: TradeKind) -> &'static str {
    match k {
        TradeKind::New => "new",
        TradeKind::Edit => "edit",
        TradeKind::Cancel => "cancel",
    }
}

pub fn trades_batch(rows: &[&Trade]) -> Result<RecordBatch, String> {
    batch(
        trades_schema(),
        vec![
            Arc::new(UInt64Array::from(rows.iter().map(|t| t.trade_id).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(rows.iter().map(|t| px(t.price)).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|t| t.quantity.get()).collect::<Vec<_>>())),
            dict_col(rows.iter().map(|t| t.aggressor.as_str())),
            Arc::new(UInt32Array::from(rows.iter().map(|t| t.buyer_agent).collect::<Vec<_>>())),
            Arc::new(UInt32Array::from(rows.iter().map(|t| t.seller_agent).collect::<Vec<_>>())),
            ts_col(rows.iter().map(|t| t.exchange_ts)),
            ts_col(rows.iter().map(|t| t.receive_ts)),
            dict_col(rows.iter().map(|t| kind_str(t.kind))),
        ],
    )
}

pub fn quotes_batch(rows: &[&Quote]) -> Result<RecordBatch, String> {
    let mut bp = Float64Builder::new();
    let mut bq = Int64Builder::new();
    let mut ap = Float64Builder::new();
    let mut aq = Int64Builder::new();
    for q in rows {
        bp.append_option(q.bid.map(|l| px(l.price)));
        bq.append_option(q.bid.map(|l| l.quantity.get()));
        ap.append_option(q.ask.map(|l| px(l.price)));
        aq.append_option(q.ask.map(|l| l.quantity.get()));
    }
    batch(
        quotes_schema(),
        vec![
            ts_col(rows.iter().map(|q| q.ts)),
            Arc::new(bp.finish()),
            Arc::new(bq.finish()),
            Arc::new(ap.finish()),
            Arc::new(aq.finish()),
        ],
    )
}

pub fn books_batch(rows: &[&BookSnapshot]) -> Result<RecordBatch, String> {
    let mut ts = Vec::new();
    let mut side = Vec::new();
    let mut level = Vec::new();
    let mut price = Vec::new();
    let mut qty = Vec::new();
    for b in rows {
        for (name, levels) in [("bid", &b.bids), ("ask", &b.asks)] {
            for (i, l) in levels.iter().enumerate() {
                ts.push(b.ts);
                side.push(name);
                level.push(i.min(255) as u8);
                price.push(px(l.price));
                qty.push(l.quantity.get());
            }
        }
    }
    batch(
        books_schema(),
        vec![
            ts_col(ts.into_iter()),
            dict_col(side.into_iter()),
            Arc::new(UInt8Array::from(level)),
            Arc::new(Float64Array::from(price)),
            Arc::new(Int64Array::from(qty)),
        ],
    )
}

pub fn candles_batch(rows: &[&Candle]) -> Result<RecordBatch, String> {
    batch(
        candles_schema(),
        vec![
            dict_col(rows.iter().map(|c| c.interval.as_str())),
            ts_col(rows.iter().map(|c| c.open_time)),
            Arc::new(Float64Array::from(rows.iter().map(|c| px(c.open)).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(rows.iter().map(|c| px(c.high)).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(rows.iter().map(|c| px(c.low)).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(rows.iter().map(|c| px(c.close)).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|c| c.volume.get()).collect::<Vec<_>>())),
            Arc::new(UInt64Array::from(rows.iter().map(|c| c.trade_count).collect::<Vec<_>>())),
        ],
    )
}

/// Writes partitioned Parquet files under a data directory.
pub struct ParquetStore {
    root: PathBuf,
    next_part: HashMap<PathBuf, u32>,
    row_group_rows: usize,
}

impl ParquetStore {
    pub fn new(data_dir: &Path) -> Self {
        ParquetStore { root: data_dir.to_path_buf(), next_part: HashMap::new(), row_group_rows: 256 * 1024 }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Groups rows by (trading date, symbol), writes one new part file per group, returns the files written.
    fn write_grouped<T>(
        &mut self,
        dataset: Dataset,
        rows: &[T],
        key: impl Fn(&T) -> (NaiveDate, &str),
        make: impl Fn(&[&T]) -> Result<RecordBatch, String>,
    ) -> Result<Vec<PathBuf>, StoreError> {
        let mut groups: BTreeMap<(NaiveDate, String), Vec<&T>> = BTreeMap::new();
        for r in rows {
            let (d, s) = key(r);
            groups.entry((d, s.to_string())).or_default().push(r);
        }
        let mut written = Vec::new();
        for ((date, symbol), rows) in groups {
            let dir = partition_dir(&self.root, dataset, date, &symbol);
            let b = make(&rows).map_err(|message| StoreError::Format { path: dir.clone(), message })?;
            written.push(self.write_atomic(&dir, &b)?);
        }
        Ok(written)
    }

    pub fn write_trades(&mut self, rows: &[Trade]) -> Result<Vec<PathBuf>, StoreError> {
        self.write_grouped(Dataset::Trades, rows, |t| (trading_date(t.exchange_ts), t.symbol.as_str()), trades_batch)
    }

    pub fn write_quotes(&mut self, rows: &[Quote]) -> Result<Vec<PathBuf>, StoreError> {
        self.write_grouped(Dataset::Quotes, rows, |q| (trading_date(q.ts), q.symbol.as_str()), quotes_batch)
    }

    pub fn write_books(&mut self, rows: &[BookSnapshot]) -> Result<Vec<PathBuf>, StoreError> {
        self.write_grouped(Dataset::BookSnapshots, rows, |b| (trading_date(b.ts), b.symbol.as_str()), books_batch)
    }

    pub fn write_candles(&mut self, rows: &[Candle]) -> Result<Vec<PathBuf>, StoreError> {
        self.write_grouped(Dataset::Candles, rows, |c| (trading_date(c.open_time), c.symbol.as_str()), candles_batch)
    }

    fn next_part(&mut self, dir: &Path) -> Result<u32, StoreError> {
        if let Some(n) = self.next_part.get_mut(dir) {
            *n += 1;
            return Ok(*n - 1);
        }
        // First write to this partition since start: continue after the highest existing part.
        let mut next = 0;
        if dir.exists() {
            for entry in std::fs::read_dir(dir).map_err(io(dir))? {
                let name = entry.map_err(io(dir))?.file_name();
                let name = name.to_string_lossy();
                if let Some(n) = name
                    .strip_prefix("part-")
                    .and_then(|r| r.strip_suffix(".parquet"))
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    next = next.max(n + 1);
                }
            }
        }
        self.next_part.insert(dir.to_path_buf(), next + 1);
        Ok(next)
    }

    fn write_atomic(&mut self, dir: &Path, batch: &RecordBatch) -> Result<PathBuf, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let n = self.next_part(dir)?;
        let final_path = dir.join(format!("part-{n:04}.parquet"));
        let tmp = dir.join(format!(".part-{n:04}.parquet.tmp"));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .build();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(pq(&tmp))?;
        writer.write(batch).map_err(pq(&tmp))?;
        let file = writer.into_inner().map_err(pq(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        std::fs::rename(&tmp, &final_path).map_err(io(&final_path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))?;
        Ok(final_path)
    }
}

/// Removes temporary files a crash left behind (they were never visible as parts).
pub fn clean_temporaries(data_dir: &Path) -> usize {
    fn walk(dir: &Path, removed: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, removed);
            } else if p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".parquet.tmp"))
                && std::fs::remove_file(&p).is_ok()
            {
                *removed += 1;
            }
        }
    }
    let mut removed = 0;
    walk(&data_dir.join("market"), &mut removed);
    removed
}

fn parquet_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), StoreError> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path).map_err(io(path))?.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            parquet_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "parquet")
            && p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        {
            out.push(p);
        }
    }
    Ok(())
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a T, StoreError> {
    b.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>()).ok_or_else(|| StoreError::Format {
        path: path.to_path_buf(),
        message: format!("column {name} missing or of the wrong type"),
    })
}

fn dict_values(b: &RecordBatch, name: &str, path: &Path) -> Result<Vec<String>, StoreError> {
    let d = column::<DictionaryArray<Int8Type>>(b, name, path)?;
    let values = d.values().as_any().downcast_ref::<StringArray>().ok_or_else(|| StoreError::Format {
        path: path.to_path_buf(),
        message: format!("column {name} is not a string dictionary"),
    })?;
    Ok(d.keys().iter().map(|k| k.map(|k| values.value(k as usize).to_string()).unwrap_or_default()).collect())
}

fn price_of(v: f64, path: &Path) -> Result<Price, StoreError> {
    Price::from_f64(v).ok_or_else(|| StoreError::Format {
        path: path.to_path_buf(),
        message: format!("price {v} is not a 4-decimal number"),
    })
}

/// Reads trades from a file or a directory tree of our trades Parquet, in exchange-time order.
pub fn read_trades(path: &Path) -> Result<Vec<Trade>, StoreError> {
    let mut files = Vec::new();
    parquet_files(path, &mut files)?;
    let mut out = Vec::new();
    for f in files {
        let symbol = f
            .ancestors()
            .filter_map(|a| a.file_name())
            .find_map(|n| n.to_string_lossy().strip_prefix("symbol=").map(str::to_string))
            .ok_or_else(|| StoreError::Format {
                path: f.clone(),
                message: "not under a symbol=... directory".into(),
            })?;
        let file = File::open(&f).map_err(io(&f))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq(&f))?.build().map_err(pq(&f))?;
        for b in reader {
            let b = b.map_err(pq(&f))?;
            let aggressors = dict_values(&b, "aggressor", &f)?;
            let kinds = dict_values(&b, "kind", &f)?;
            let ids = column::<UInt64Array>(&b, "trade_id", &f)?;
            let prices = column::<Float64Array>(&b, "price", &f)?;
            let qtys = column::<Int64Array>(&b, "quantity", &f)?;
            let buyers = column::<UInt32Array>(&b, "buyer_agent", &f)?;
            let sellers = column::<UInt32Array>(&b, "seller_agent", &f)?;
            let ex = column::<TimestampNanosecondArray>(&b, "exchange_ts", &f)?;
            let rx = column::<TimestampNanosecondArray>(&b, "receive_ts", &f)?;
            for i in 0..b.num_rows() {
                out.push(Trade {
                    symbol: symbol.clone(),
                    trade_id: ids.value(i),
                    price: price_of(prices.value(i), &f)?,
                    quantity: Qty(qtys.value(i)),
                    aggressor: match aggressors[i].as_str() {
                        "B" => Aggressor::Buy,
                        "S" => Aggressor::Sell,
                        _ => Aggressor::Unknown,
                    },
                    buyer_agent: buyers.value(i),
                    seller_agent: sellers.value(i),
                    exchange_ts: from_ns(ex.value(i)),
                    receive_ts: from_ns(rx.value(i)),
                    kind: match kinds[i].as_str() {
                        "edit" => TradeKind::Edit,
                        "cancel" => TradeKind::Cancel,
                        _ => TradeKind::New,
                    },
                });
            }
        }
    }
    out.sort_by(|a, b| {
        a.exchange_ts.cmp(&b.exchange_ts).then(a.symbol.cmp(&b.symbol)).then(a.trade_id.cmp(&b.trade_id))
    });
    Ok(out)
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub partitions_archived: usize,
}

/// Moves `date=` partitions older than `keep_days` (by trading date) from `market/` to `archive/market/`.
pub fn apply_retention(data_dir: &Path, today: NaiveDate, keep_days: i64) -> Result<RetentionReport, StoreError> {
    let cutoff = today - chrono::Duration::days(keep_days);
    let mut report = RetentionReport::default();
    for ds in Dataset::ALL {
        let dir = data_dir.join("market").join(ds.dir_name());
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(date) = name.strip_prefix("date=").and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            else {
                continue;
            };
            if date >= cutoff {
                continue;
            }
            let target = data_dir.join("archive").join("market").join(ds.dir_name()).join(&name);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            if target.exists() {
                // A partition archived before and written to again (late data): move its files one by one.
                merge_into(&e.path(), &target)?;
            } else {
                std::fs::rename(e.path(), &target).map_err(io(&target))?;
            }
            report.partitions_archived += 1;
        }
    }
    Ok(report)
}

fn merge_into(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    for e in std::fs::read_dir(from).map_err(io(from))?.flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            merge_into(&e.path(), &target)?;
        } else {
            let mut t = target.clone();
            let mut n = 0;
            while t.exists() {
                n += 1;
                t = to.join(format!("{}-late{n}", e.file_name().to_string_lossy()));
            }
            std::fs::rename(e.path(), &t).map_err(io(&t))?;
        }
    }
    std::fs::remove_dir_all(from).map_err(io(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use market_data::{Interval, Level};

    fn t(sym: &str, id: u64, price: f64, at: DateTime<Utc>) -> Trade {
        Trade {
            symbol: sym.into(),
            trade_id: id,
            price: Price::from_f64(price).unwrap(),
            quantity: Qty(100),
            aggressor: if id.is_multiple_of(2) { Aggressor::Buy } else { Aggressor::Sell },
            buyer_agent: 3,
            seller_agent: 8,
            exchange_ts: at,
            receive_ts: at + chrono::Duration::microseconds(150),
            kind: TradeKind::New,
        }
    }

    #[test]
    fn trades_round_trip_with_the_spec_layout() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ParquetStore::new(dir.path());
        let at = Utc.with_ymd_and_hms(2025, 11, 24, 13, 0, 0).unwrap();
        let rows: Vec<Trade> = (1..=1000)
            .map(|i| {
                t(
                    if i % 2 == 0 { "PETR4" } else { "VALE3" },
                    i,
                    30.0 + (i % 7) as f64 * 0.01,
                    at + chrono::Duration::milliseconds(i as i64),
                )
            })
            .collect();
        let files = store.write_trades(&rows).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].ends_with("market/trades/date=2025-11-24/symbol=PETR4/part-0000.parquet"), "{:?}", files[0]);
        let again = store.write_trades(&rows[..10]).unwrap();
        assert!(again.iter().any(|f| f.ends_with("symbol=PETR4/part-0001.parquet")));
        let mut back =
            read_trades(&dir.path().join("market/trades/date=2025-11-24/symbol=PETR4/part-0000.parquet")).unwrap();
        let mut expected: Vec<Trade> = rows.iter().filter(|t| t.symbol == "PETR4").cloned().collect();
        back.sort_by_key(|t| t.trade_id);
        expected.sort_by_key(|t| t.trade_id);
        assert_eq!(back, expected, "exact round trip, nanosecond timestamps included");
        // A new store (a restart) continues the part numbering.
        let mut store2 = ParquetStore::new(dir.path());
        let f = store2.write_trades(&rows[..2]).unwrap();
        assert!(f.iter().any(|f| f.ends_with("symbol=PETR4/part-0002.parquet")), "{f:?}");
        assert_eq!(read_trades(&dir.path().join("market")).unwrap().len(), 1000 + 10 + 2);
    }

    #[test]
    fn late_evening_trades_belong_to_the_sao_paulo_date() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ParquetStore::new(dir.path());
        // 01:00 UTC on the 25th is 22:00 on the 24th in São Paulo.
        let at = Utc.with_ymd_and_hms(2025, 11, 25, 1, 0, 0).unwrap();
        let files = store.write_trades(&[t("PETR4", 1, 30.0, at)]).unwrap();
        assert!(files[0].to_string_lossy().contains("date=2025-11-24"));
    }

    #[test]
    fn other_datasets_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ParquetStore::new(dir.path());
        let at = Utc.with_ymd_and_hms(2025, 11, 24, 13, 0, 0).unwrap();
        let lvl = |p: f64, q: i64| Level { price: Price::from_f64(p).unwrap(), quantity: Qty(q) };
        let book = BookSnapshot {
            symbol: "PETR4".into(),
            bids: vec![lvl(29.99, 100), lvl(29.98, 200)],
            asks: vec![lvl(30.0, 300)],
            ts: at,
        };
        assert_eq!(store.write_books(std::slice::from_ref(&book)).unwrap().len(), 1);
        assert_eq!(
            store
                .write_quotes(&[book.quote(), Quote { symbol: "PETR4".into(), bid: None, ask: None, ts: at }])
                .unwrap()
                .len(),
            1
        );
        let c = Candle {
            symbol: "PETR4".into(),
            interval: Interval::M1,
            open_time: at,
            open: Price(300_000),
            high: Price(301_000),
            low: Price(299_000),
            close: Price(300_500),
            volume: Qty(1_000),
            trade_count: 7,
        };
        assert_eq!(store.write_candles(&[c]).unwrap().len(), 1);
        for ds in [Dataset::Quotes, Dataset::BookSnapshots, Dataset::Candles] {
            assert!(
                partition_dir(dir.path(), ds, NaiveDate::from_ymd_opt(2025, 11, 24).unwrap(), "PETR4")
                    .join("part-0000.parquet")
                    .exists(),
                "{ds:?}"
            );
        }
    }

    #[test]
    fn retention_moves_old_partitions_to_archive() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ParquetStore::new(dir.path());
        let old = Utc.with_ymd_and_hms(2025, 8, 1, 13, 0, 0).unwrap();
        let recent = Utc.with_ymd_and_hms(2025, 11, 20, 13, 0, 0).unwrap();
        store.write_trades(&[t("PETR4", 1, 30.0, old), t("PETR4", 2, 30.0, recent)]).unwrap();
        std::fs::write(dir.path().join("market/trades/date=2025-11-20/symbol=PETR4/.part-0009.parquet.tmp"), b"half")
            .unwrap();
        assert_eq!(clean_temporaries(dir.path()), 1);
        let r = apply_retention(dir.path(), NaiveDate::from_ymd_opt(2025, 11, 24).unwrap(), 90).unwrap();
        assert_eq!(r.partitions_archived, 1);
        assert!(dir.path().join("archive/market/trades/date=2025-08-01/symbol=PETR4/part-0000.parquet").exists());
        assert!(!dir.path().join("market/trades/date=2025-08-01").exists());
        assert!(dir.path().join("market/trades/date=2025-11-20").exists());
    }
}
