//! `tradingsystem market`: market data tools.

use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum MarketCmd {
    /// Writes synthetic B3 trades (Parquet, our layout) from the simulated market, for replay and backtests.
    Generate {
        #[arg(long, default_value = "PETR4")]
        symbol: String,
        /// Number of trades.
        #[arg(long, default_value_t = 100_000)]
        ticks: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory (files go under OUT/market/trades/date=.../symbol=.../).
        #[arg(long)]
        out: PathBuf,
        /// Milliseconds between market events on the synthetic clock.
        #[arg(long, default_value_t = 20)]
        step_ms: u64,
    },
}

pub fn run(cmd: MarketCmd) -> Result<()> {
    match cmd {
        MarketCmd::Generate { symbol, ticks, seed, out, step_ms } => generate(&symbol, ticks, seed, &out, step_ms),
    }
}

fn generate(symbol: &str, ticks: u64, seed: u64, out: &std::path::Path, step_ms: u64) -> Result<()> {
    if ticks == 0 || ticks > 100_000_000 {
        bail!("--ticks must be between 1 and 100000000");
    }
    if step_ms == 0 {
        bail!("--step-ms must be at least 1");
    }
    let symbol = symbol.trim().to_ascii_uppercase();
    // Today's 10:00 in São Paulo (13:00 UTC): the synthetic session starts at the open.
    let start = chrono::Utc::now().date_naive().and_hms_opt(13, 0, 0).unwrap_or_default().and_utc();
    let instruments = domain::Instruments::b3_defaults(start.date_naive());
    if instruments.get(&symbol).is_none() {
        let known: Vec<&str> = instruments.iter().map(|i| i.symbol.as_str()).collect();
        bail!("unknown symbol {symbol:?}; the simulated market lists {}", known.join(", "));
    }
    let market = market_sim::SimMarket::new(instruments, market_sim::SimConfig { seed, trades_per_second: 50.0 });
    let mut store = market_store::ParquetStore::new(out);
    let mut batch = Vec::with_capacity(500_000);
    let (mut written, mut files) = (0u64, 0usize);
    let mut now = start;
    while written + (batch.len() as u64) < ticks {
        now += chrono::Duration::milliseconds(step_ms as i64);
        for mut t in market.step(&symbol, now) {
            if written + (batch.len() as u64) >= ticks {
                break;
            }
            t.receive_ts = now;
            batch.push(t);
        }
        if batch.len() >= 500_000 {
            files += store.write_trades(&batch)?.len();
            written += batch.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        files += store.write_trades(&batch)?.len();
        written += batch.len() as u64;
    }
    println!(
        "wrote {written} {symbol} trades in {files} file(s) under {}",
        out.join("market").join("trades").display()
    );
    Ok(())
}
