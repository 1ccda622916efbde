//! `tradingsystem market`: market data tools.

use anyhow::{bail, Result};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::America::Sao_Paulo;
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
        /// The first session (YYYY-MM-DD, a weekday; default today, or the next weekday): data starts at its
        /// 10:00 São Paulo open, and trading continues at the next weekday's open past each 18:00 close.
        #[arg(long)]
        start: Option<String>,
    },
}

pub fn run(cmd: MarketCmd) -> Result<()> {
    match cmd {
        MarketCmd::Generate { symbol, ticks, seed, out, step_ms, start } => {
            let first = match start {
                Some(text) => session_day(&text)?,
                None => next_weekday(chrono::Utc::now().with_timezone(&Sao_Paulo).date_naive()),
            };
            generate(&symbol, ticks, seed, &out, step_ms, first)
        }
    }
}

/// B3's regular session in São Paulo, as the generator fills it.
const OPEN: (u32, u32) = (10, 0);
const CLOSE: (u32, u32) = (18, 0);

fn session_day(text: &str) -> Result<NaiveDate> {
    let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("--start must be a date such as 2025-03-10, not {text:?}"))?;
    if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        bail!("--start {day} is a {:?}: B3 has no session then; choose a weekday", day.weekday());
    }
    Ok(day)
}

fn next_weekday(mut day: NaiveDate) -> NaiveDate {
    while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
        day = day.succ_opt().unwrap_or(day);
    }
    day
}

/// `day`'s `(h, m)` in São Paulo, in UTC.
fn sao_paulo(day: NaiveDate, (h, m): (u32, u32)) -> DateTime<Utc> {
    let local = day.and_hms_opt(h, m, 0).unwrap_or_default();
    Sao_Paulo.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc)).unwrap_or_else(|| local.and_utc())
}

fn generate(symbol: &str, ticks: u64, seed: u64, out: &std::path::Path, step_ms: u64, first: NaiveDate) -> Result<()> {
    if ticks == 0 || ticks > 100_000_000 {
        bail!("--ticks must be between 1 and 100000000");
    }
    if step_ms == 0 {
        bail!("--step-ms must be at least 1");
    }
    let symbol = symbol.trim().to_ascii_uppercase();
    let start = sao_paulo(first, OPEN);
    let mut close = sao_paulo(first, CLOSE);
    let instruments = domain::Instruments::b3_defaults(first);
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
        if now >= close {
            let next = next_weekday(close.with_timezone(&Sao_Paulo).date_naive().succ_opt().unwrap_or(first));
            now = sao_paulo(next, OPEN);
            close = sao_paulo(next, CLOSE);
        }
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
        "wrote {written} {symbol} trades from {} to {} in {files} file(s) under {}",
        start.to_rfc3339(),
        now.to_rfc3339(),
        out.join("market").join("trades").display()
    );
    Ok(())
}
