//! `tradingsystem market`: market data tools.

use anyhow::{bail, Result};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::America::Sao_Paulo;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum MarketCmd {
    /// Writes synthetic B3 market data (Parquet, our layout) from the simulated market, for replay and backtests.
    Generate {
        #[arg(long, default_value = "PETR4")]
        symbol: String,
        /// Number of events of the first kind listed.
        #[arg(long, default_value_t = 100_000)]
        ticks: u64,
        /// What to write, comma-separated: trades, quotes (top of book, on each change), book (5-level snapshots,
        /// on each change).
        #[arg(long, value_delimiter = ',', default_value = "trades")]
        kind: Vec<String>,
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
        MarketCmd::Generate { symbol, ticks, kind, seed, out, step_ms, start } => {
            let first = match start {
                Some(text) => session_day(&text)?,
                None => next_weekday(chrono::Utc::now().with_timezone(&Sao_Paulo).date_naive()),
            };
            let kinds = kinds(&kind)?;
            generate(&Plan { symbol: &symbol, ticks, kinds: &kinds, seed, out: &out, step_ms, first })
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Trades,
    Quotes,
    Book,
}

fn kinds(names: &[String]) -> Result<Vec<Kind>> {
    let mut out = Vec::new();
    for n in names {
        let k = match n.trim() {
            "trades" => Kind::Trades,
            "quotes" => Kind::Quotes,
            "book" | "books" => Kind::Book,
            other => bail!("--kind {other:?}: choose trades, quotes or book (comma-separated for several)"),
        };
        if !out.contains(&k) {
            out.push(k);
        }
    }
    if out.is_empty() {
        bail!("--kind: choose trades, quotes or book");
    }
    Ok(out)
}

struct Plan<'a> {
    symbol: &'a str,
    ticks: u64,
    kinds: &'a [Kind],
    seed: u64,
    out: &'a std::path::Path,
    step_ms: u64,
    first: NaiveDate,
}

/// Rows waiting to be written, per kind.
#[derive(Default)]
struct Pending {
    trades: Vec<market_data::Trade>,
    quotes: Vec<market_data::Quote>,
    books: Vec<market_data::BookSnapshot>,
    written: [u64; 3],
    files: usize,
}

impl Pending {
    fn count(&self, k: Kind) -> u64 {
        let (w, n) = match k {
            Kind::Trades => (self.written[0], self.trades.len()),
            Kind::Quotes => (self.written[1], self.quotes.len()),
            Kind::Book => (self.written[2], self.books.len()),
        };
        w + n as u64
    }

    fn flush(&mut self, store: &mut market_store::ParquetStore, all: bool) -> Result<()> {
        const BATCH: usize = 500_000;
        if !self.trades.is_empty() && (all || self.trades.len() >= BATCH) {
            self.files += store.write_trades(&self.trades)?.len();
            self.written[0] += self.trades.len() as u64;
            self.trades.clear();
        }
        if !self.quotes.is_empty() && (all || self.quotes.len() >= BATCH) {
            self.files += store.write_quotes(&self.quotes)?.len();
            self.written[1] += self.quotes.len() as u64;
            self.quotes.clear();
        }
        if !self.books.is_empty() && (all || self.books.len() >= BATCH / 10) {
            self.files += store.write_books(&self.books)?.len();
            self.written[2] += self.books.len() as u64;
            self.books.clear();
        }
        Ok(())
    }
}

fn generate(plan: &Plan<'_>) -> Result<()> {
    let Plan { ticks, kinds, seed, out, step_ms, first, .. } = *plan;
    if ticks == 0 || ticks > 100_000_000 {
        bail!("--ticks must be between 1 and 100000000");
    }
    if step_ms == 0 {
        bail!("--step-ms must be at least 1");
    }
    let symbol = plan.symbol.trim().to_ascii_uppercase();
    let start = sao_paulo(first, OPEN);
    let mut close = sao_paulo(first, CLOSE);
    let instruments = domain::Instruments::b3_defaults(first);
    if instruments.get(&symbol).is_none() {
        let known: Vec<&str> = instruments.iter().map(|i| i.symbol.as_str()).collect();
        bail!("unknown symbol {symbol:?}; the simulated market lists {}", known.join(", "));
    }
    let market = market_sim::SimMarket::new(instruments, market_sim::SimConfig { seed, trades_per_second: 50.0 });
    let mut store = market_store::ParquetStore::new(out);
    let mut p = Pending::default();
    let (mut last_quote, mut last_book) = (None, None);
    let lead = kinds[0];
    let mut now = start;
    while p.count(lead) < ticks {
        now += chrono::Duration::milliseconds(step_ms as i64);
        if now >= close {
            let next = next_weekday(close.with_timezone(&Sao_Paulo).date_naive().succ_opt().unwrap_or(first));
            now = sao_paulo(next, OPEN);
            close = sao_paulo(next, CLOSE);
        }
        let trades = market.step(&symbol, now);
        for k in kinds {
            match k {
                Kind::Trades => {
                    for mut t in trades.iter().cloned() {
                        if lead == Kind::Trades && p.count(lead) >= ticks {
                            break;
                        }
                        t.receive_ts = now;
                        p.trades.push(t);
                    }
                }
                Kind::Quotes => {
                    let Some(q) = market.book(&symbol, 1, now).map(|b| b.quote()) else { continue };
                    let top = (q.bid, q.ask);
                    if last_quote != Some(top) {
                        last_quote = Some(top);
                        p.quotes.push(q);
                    }
                }
                Kind::Book => {
                    let Some(b) = market.book(&symbol, 5, now) else { continue };
                    let levels = (b.bids.clone(), b.asks.clone());
                    if last_book.as_ref() != Some(&levels) {
                        last_book = Some(levels);
                        p.books.push(b);
                    }
                }
            }
        }
        p.flush(&mut store, false)?;
    }
    p.flush(&mut store, true)?;
    let mut what = Vec::new();
    for (k, name, i) in [(Kind::Trades, "trades", 0), (Kind::Quotes, "quotes", 1), (Kind::Book, "book snapshots", 2)] {
        if kinds.contains(&k) {
            what.push(format!("{} {name}", p.written[i]));
        }
    }
    println!(
        "wrote {} of {symbol} from {} to {} in {} file(s) under {}",
        what.join(", "),
        start.to_rfc3339(),
        now.to_rfc3339(),
        p.files,
        out.join("market").display()
    );
    Ok(())
}
