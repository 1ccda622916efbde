//! Data Capture end to end: a feed (in-memory replay at maximum speed) → validation, de-duplication, candles →
//! bus publish of every trade and the conflated candle updates, with a subscriber draining the bus.
//!
//! `cargo bench -p data-capture --bench pipeline`

use chrono::{Duration, TimeZone, Utc};
use data_capture::feed::{ReplayFeed, Speed};
use data_capture::DataCapture;
use domain::{Instruments, Price, Qty};
use market_data::{Aggressor, Trade, TradeKind};
use std::time::Instant;

// The allocator of the `tradingsystem` binary, so the numbers are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: u64 = if quick { 200_000 } else { 2_000_000 };
    let symbols = ["PETR4", "VALE3", "ITUB4", "BBDC4"];
    let base = Utc.with_ymd_and_hms(2025, 11, 24, 13, 0, 0).single().unwrap_or_default();
    let trades: Vec<Trade> = (0..n)
        .map(|i| {
            let at = base + Duration::microseconds(i as i64 * 25);
            Trade {
                symbol: symbols[(i % 4) as usize].to_string(),
                trade_id: i / 4 + 1,
                price: Price(300_000 + ((i * 7919) % 200) as i64 * 100),
                quantity: Qty(100),
                aggressor: if i.is_multiple_of(2) { Aggressor::Buy } else { Aggressor::Sell },
                buyer_agent: 3,
                seller_agent: 8,
                exchange_ts: at,
                receive_ts: at,
                kind: TradeKind::New,
            }
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let bus = bus::Bus::new();
        let mut sub = bus.subscribe("md.>", 65_536).expect("subscribe");
        let drain = tokio::spawn(async move {
            let mut delivered = 0u64;
            while sub.recv().await.is_some() {
                delivered += 1;
            }
            (delivered, sub.dropped())
        });
        let instruments = Instruments::b3_defaults(base.date_naive());
        let started = Instant::now();
        let dc = DataCapture::start(
            ReplayFeed::from_trades(trades, Speed::Max),
            instruments,
            bus.clone(),
            Vec::new(),
            clock::WallClock::shared(),
        );
        loop {
            let st = dc.status();
            let done: u64 = st.symbols.values().map(|s| s.stats.trades).sum();
            if done >= n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        drop(dc);
        drop(bus);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drain.abort();
        println!(
            "data capture pipeline (feed → validation → candles → bus): {n} trades in {secs:.3} s = {:.0} trades/s",
            n as f64 / secs
        );
    });
}
