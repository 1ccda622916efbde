//! Our Parquet files are readable as they are by pyarrow, with the types the spec names.

use chrono::{TimeZone, Utc};
use domain::{Price, Qty};
use market_data::{Aggressor, BookSnapshot, Candle, Interval, Level, Trade, TradeKind};
use market_store::ParquetStore;
use std::process::Command;

const CHECK: &str = r#"
import sys, pyarrow as pa, pyarrow.parquet as pq, pyarrow.dataset as ds
root = sys.argv[1]
t = pq.read_table(root + "/market/trades")
s = t.schema
assert s.field("price").type == pa.float64(), s
assert s.field("quantity").type == pa.int64(), s
assert s.field("trade_id").type == pa.uint64(), s
assert s.field("exchange_ts").type == pa.timestamp("ns", tz="UTC"), s
assert s.field("receive_ts").type == pa.timestamp("ns", tz="UTC"), s
assert pa.types.is_dictionary(s.field("aggressor").type), s
assert t.num_rows == 300, t.num_rows
# Hive partitions become columns.
d = ds.dataset(root + "/market/trades", partitioning="hive").to_table()
assert set(d.column("symbol").to_pylist()) == {"PETR4", "VALE3", "WDOZ25"}, d.column("symbol")
assert abs(sum(t.column("price").to_pylist()) - 300 * 30.0 - sum(i % 5 for i in range(300)) * 0.01) < 1e-6
c = pq.read_table(root + "/market/candles")
assert c.schema.field("open_time").type == pa.timestamp("ns", tz="UTC")
b = pq.read_table(root + "/market/book_snapshots")
assert b.num_rows == 4
q = pq.read_table(root + "/market/quotes")
assert q.num_rows == 1
print("ok")
"#;

#[test]
fn pyarrow_reads_our_files() {
    let has_pyarrow =
        Command::new("python3").args(["-c", "import pyarrow"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !has_pyarrow {
        if std::env::var("TS_REQUIRE_PYARROW").is_ok_and(|v| v == "1") {
            panic!("pyarrow required (TS_REQUIRE_PYARROW=1) but python3 cannot import it");
        }
        eprintln!("skipped: python3 with pyarrow is not installed (pip install pyarrow)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut store = ParquetStore::new(dir.path());
    let at = Utc.with_ymd_and_hms(2025, 11, 24, 13, 0, 0).unwrap();
    let symbols = ["PETR4", "VALE3", "WDOZ25"];
    let trades: Vec<Trade> = (0..300u64)
        .map(|i| Trade {
            symbol: symbols[(i % 3) as usize].into(),
            trade_id: i + 1,
            price: Price(300_000 + (i % 5) as i64 * 100),
            quantity: Qty(100),
            aggressor: [Aggressor::Buy, Aggressor::Sell, Aggressor::Unknown][(i % 3) as usize],
            buyer_agent: 3,
            seller_agent: 8,
            exchange_ts: at + chrono::Duration::milliseconds(i as i64),
            receive_ts: at + chrono::Duration::milliseconds(i as i64) + chrono::Duration::nanoseconds(1234),
            kind: TradeKind::New,
        })
        .collect();
    store.write_trades(&trades).unwrap();
    let level = |p: i64| Level { price: Price(p), quantity: Qty(100) };
    let book = BookSnapshot {
        symbol: "PETR4".into(),
        bids: vec![level(299_900), level(299_800)],
        asks: vec![level(300_000), level(300_100)],
        ts: at,
    };
    store.write_books(std::slice::from_ref(&book)).unwrap();
    store.write_quotes(&[book.quote()]).unwrap();
    let candle = Candle {
        symbol: "PETR4".into(),
        interval: Interval::M1,
        open_time: at,
        open: Price(300_000),
        high: Price(300_400),
        low: Price(300_000),
        close: Price(300_200),
        volume: Qty(10_000),
        trade_count: 100,
    };
    store.write_candles(&[candle]).unwrap();
    let out = Command::new("python3").args(["-c", CHECK, dir.path().to_str().unwrap()]).output().unwrap();
    assert!(
        out.status.success(),
        "pyarrow check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
