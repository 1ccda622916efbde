//! Tick processing throughput on one core: validation, de-duplication, gap tracking, one-minute bars, the tape.
//!
//! `cargo bench -p market-data --bench processing`

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use domain::{Instruments, Price, Qty};
use market_data::{Aggressor, ProcessorConfig, TickProcessor, Trade, TradeKind};
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: u64 = if quick { 200_000 } else { 5_000_000 };
    let instruments = Instruments::b3_defaults(NaiveDate::from_ymd_opt(2025, 11, 24).unwrap_or_default());
    let symbols = ["PETR4", "VALE3", "ITUB4", "BBDC4"];
    let base = Utc.with_ymd_and_hms(2025, 11, 24, 13, 0, 0).single().unwrap_or_default();
    // Built up front so the measurement is the processor, not the generator. A trade every 100 µs per symbol
    // makes many one-minute bars; every 1000th id is skipped to exercise gap tracking.
    let trades: Vec<Trade> = (0..n)
        .map(|i| {
            let at = base + Duration::microseconds(i as i64 * 25);
            let id = i / symbols.len() as u64 + 1;
            Trade {
                symbol: symbols[(i % symbols.len() as u64) as usize].to_string(),
                trade_id: if id.is_multiple_of(1000) { id + 1 } else { id },
                price: Price(300_000 + ((i * 7919) % 200) as i64 * 100),
                quantity: Qty(100) * (1 + (i % 5) as i64),
                aggressor: if i.is_multiple_of(2) { Aggressor::Buy } else { Aggressor::Sell },
                buyer_agent: 3,
                seller_agent: 8,
                exchange_ts: at,
                receive_ts: at,
                kind: TradeKind::New,
            }
        })
        .collect();
    let mut p = TickProcessor::new(instruments.clone(), ProcessorConfig::default());
    let copy = trades.clone();
    let started = Instant::now();
    let mut accepted = 0u64;
    for t in copy {
        if p.on_trade(t).outcome.is_accepted() {
            accepted += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "tick processing: {n} trades ({accepted} accepted) in {secs:.3} s = {:.0} trades/s on one core",
        n as f64 / secs
    );
}
