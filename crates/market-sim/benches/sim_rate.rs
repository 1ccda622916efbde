//! How fast the simulated market can print: asks `SimMarket::run` for 12,500 trades/s on each of the 8 default
//! symbols (100,000/s) and counts what arrives on its tape for 3 s.
//!
//! `cargo bench -p market-sim --bench sim_rate`

use chrono::Utc;
use domain::Instruments;
use market_sim::{MarketEvent, SimConfig, SimMarket};
use std::time::{Duration, Instant};

fn main() {
    // `-- --rate N` asks for N trades/s in total instead of 100,000.
    let args: Vec<String> = std::env::args().collect();
    let total: f64 = args
        .iter()
        .position(|a| a == "--rate")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000.0);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let market = SimMarket::new(Instruments::b3_defaults(Utc::now().date_naive()), SimConfig { seed: 1, trades_per_second: total / 8.0 });
        let mut tape = market.subscribe();
        let runner = tokio::spawn(market.clone().run());
        let started = Instant::now();
        let (mut trades, mut books, mut lagged) = (0u64, 0u64, 0u64);
        while started.elapsed() < Duration::from_secs(3) {
            match tape.recv().await {
                Ok(MarketEvent::Trade(_)) => trades += 1,
                Ok(MarketEvent::Book(_) | MarketEvent::BookUpdate(_)) => books += 1,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => lagged += n,
                Err(_) => break,
            }
        }
        let secs = started.elapsed().as_secs_f64();
        runner.abort();
        println!(
            "simulated market: {:.0} trades/s and {:.0} book updates/s over 8 symbols (asked {total:.0} trades/s); the reader lagged by {lagged} events",
            trades as f64 / secs,
            books as f64 / secs
        );
    });
}
