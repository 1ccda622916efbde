//! How long a restart takes with a long journal.
//!
//! `cargo run --release -p order-manager --example journal_restart -- --records 10000000 --dir /tmp/restart`
//! writes a journal of realistic records (each order: submitted, accepted by the broker, filled), then times
//! `OrderManager::recover` on it twice: first with no snapshot (a full replay, as every restart was before
//! snapshots), then, once the snapshot writer has caught up with the sealed segments, from the snapshot. With
//! `--reuse` an existing directory is recovered again without rewriting it. Results are in BENCHMARKS.md.

use chrono::{Duration, Utc};
use clock::WallClock;
use domain::calendar::TradingCalendar;
use domain::order::{Fill, Order, OrderEvent, OrderRequest, OrderType, PositionType, Side, TimeInForce};
use domain::{AccountId, Instruments, Price, Qty, Symbol};
use order_manager::{Entry, OrderManager, Record};
use std::sync::Arc;
use std::time::Instant;

const SYMBOLS: [Symbol; 4] = [Symbol::lit("PETR4"), Symbol::lit("VALE3"), Symbol::lit("ITUB4"), Symbol::lit("BBDC4")];

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn write_journal(dir: &std::path::Path, records: u64) {
    let (journal, _) = journal::Journal::open(dir.join("oms.journal")).expect("open journal");
    let start = Utc::now() - Duration::days(90);
    let mut written = 0u64;
    let mut id = 1u64;
    let desk = AccountId::new("desk");
    let mut last = 0;
    let started = Instant::now();
    while written < records {
        let ts = start + Duration::milliseconds(id as i64 * 20);
        let symbol = SYMBOLS[(id % 4) as usize];
        let side = if id.is_multiple_of(2) { Side::Buy } else { Side::Sell };
        let req = OrderRequest {
            symbol,
            side,
            order_type: OrderType::Limit,
            quantity: Qty(100),
            price: Some(Price(37_1200 + (id % 50) as i64 * 100)),
            stop_price: None,
            time_in_force: TimeInForce::Day,
            client_order_id: Some(format!("c-{id}")),
            position_type: PositionType::Daytrade,
            justification: None,
            source: Some("restart-bench".into()),
        };
        let order = Order::new(id, &desk, &req, ts);
        let price = req.price.unwrap_or(Price(37_1200));
        let entries = [
            Entry::OrderSubmitted { order },
            Entry::OrderEvent { order_id: id, event: OrderEvent::Accepted { broker_order_id: format!("P{id}") } },
            Entry::OrderEvent {
                order_id: id,
                event: OrderEvent::Filled(Fill { exec_id: format!("E{id}"), quantity: Qty(100), price, ts }),
            },
        ];
        for entry in entries {
            if written == records {
                break;
            }
            let actor = if matches!(entry, Entry::OrderSubmitted { .. }) { "desk" } else { "broker" };
            let rec = Record { ts, actor: actor.into(), correlation_id: None, entry };
            let bytes = domain::price::with_exact_strings(|| serde_json::to_vec(&rec)).expect("encode");
            last = journal.append(&bytes).expect("append");
            written += 1;
        }
        id += 1;
        if id.is_multiple_of(100_000) {
            journal.wait_durable_blocking(last).expect("durable");
        }
    }
    journal.wait_durable_blocking(last).expect("durable");
    journal.close();
    println!("wrote {written} records ({} orders) in {:.1} s", id - 1, started.elapsed().as_secs_f64());
}

fn main() {
    let records: u64 = arg("--records").and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = std::path::PathBuf::from(arg("--dir").unwrap_or_else(|| "restart-bench".into()));
    let reuse = std::env::args().any(|a| a == "--reuse");
    if !reuse {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create dir");
        write_journal(&dir, records);
    }
    let bytes: u64 = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    let instruments = Instruments::b3_defaults(Utc::now().date_naive());
    let recover = |label: &str| {
        let started = Instant::now();
        let (oms, report) = OrderManager::recover(
            &dir.join("oms.journal"),
            instruments.clone(),
            TradingCalendar::Continuous,
            Arc::new(WallClock),
        )
        .expect("recover");
        println!(
            "{label}: recovered {} records ({} orders, {:.0} MB journal) in {:.2} s: snapshot covered {}, {} decoded",
            report.records,
            report.orders,
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64(),
            report.snapshot_records,
            report.replayed_records,
        );
        oms
    };
    let oms = recover("first restart");
    if let Some((last, _)) = oms.journal().segments().last().copied() {
        let started = Instant::now();
        let mut done = oms.snapshots();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(done.wait_for(|&n| n >= last.last)).expect("snapshot writer");
        println!(
            "snapshot of {} records written in the background in {:.1} s",
            last.last,
            started.elapsed().as_secs_f64()
        );
    }
    oms.shutdown();
    drop(oms);
    recover("second restart").shutdown();
}
