//! Parquet write rate: trades through `ParquetStore::write_trades` (Arrow batch, snappy, fsync, rename).
//!
//! `cargo bench -p market-store --bench parquet_write`. Files go to `TS_BENCH_DIR` (default the system temp dir).

use chrono::{Duration, TimeZone, Utc};
use domain::{Price, Qty};
use market_data::{Aggressor, Trade, TradeKind};
use market_store::ParquetStore;
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let base = std::env::var("TS_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(&base).expect("tempdir");
    let start = Utc.with_ymd_and_hms(2025, 11, 24, 13, 0, 0).single().unwrap_or_default();
    let per_batch = 100_000usize;
    let batches = if quick { 3 } else { 20 };
    let mut store = ParquetStore::new(dir.path());
    let mut total = std::time::Duration::ZERO;
    for b in 0..batches {
        let trades: Vec<Trade> = (0..per_batch)
            .map(|i| {
                let n = (b * per_batch + i) as i64;
                let at = start + Duration::microseconds(n * 100);
                Trade {
                    symbol: "PETR4".into(),
                    trade_id: n as u64 + 1,
                    price: Price(380_000 + (n * 7919 % 400) * 100),
                    quantity: Qty(100) * (1 + n % 9),
                    aggressor: if n % 3 == 0 { Aggressor::Buy } else { Aggressor::Sell },
                    buyer_agent: (n % 120) as u32,
                    seller_agent: (n % 97) as u32,
                    exchange_ts: at,
                    receive_ts: at + Duration::microseconds(80),
                    kind: TradeKind::New,
                }
            })
            .collect();
        let t0 = Instant::now();
        store.write_trades(&trades).expect("write");
        total += t0.elapsed();
    }
    let rows = (per_batch * batches) as f64;
    let bytes: u64 = walk(dir.path()).iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
    println!(
        "parquet write: {} trades in {} files of {per_batch} rows: {:.0} rows/s, {:.1} MB/s on disk ({:.1} bytes/row, snappy, fsync per file)",
        rows as u64,
        batches,
        rows / total.as_secs_f64(),
        bytes as f64 / total.as_secs_f64() / 1e6,
        bytes as f64 / rows
    );
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
