//! Feed adapters: where market data comes from.
//!
//! The trait follows the broker DLL's semantics: everything arrives asynchronously as [`FeedEvent`]s on one
//! stream (connection state per dimension, trades, books, history packets with progress and a last-packet flag);
//! requests only say "accepted" or fail at once. Implementations: [`SimFeed`] (the simulated B3 market) and
//! [`ReplayFeed`] (our own Parquet, at 1×, N× or maximum speed).

use chrono::{DateTime, Utc};
use domain::broker::LinkState;
use market_data::{BookSnapshot, Trade};
use market_sim::{MarketEvent, SimMarket};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

/// Connection state per dimension, each with a reason when not connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedConnection {
    pub login: LinkState,
    pub market_data: LinkState,
    pub reason: Option<String>,
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum FeedEvent {
    Connection(FeedConnection),
    Trade(Trade),
    /// A full book: replaces the receiver's.
    Book(BookSnapshot),
    /// Changed levels since the previous book event of the symbol.
    BookUpdate(market_data::BookUpdate),
    /// One packet of an answer to [`Feed::request_history`]; `last` closes the request.
    History {
        request_id: u64,
        symbol: String,
        trades: Vec<Trade>,
        progress: f32,
        last: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("this feed cannot answer history requests")]
    NoHistory,
    #[error("the feed is not running")]
    NotRunning,
}

pub trait Feed: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Starts producing events into `events`. Called once.
    fn start(&self, events: mpsc::Sender<FeedEvent>);

    /// Asks for the trades with ids in `[from_id, to_id]`; they arrive as [`FeedEvent::History`] packets.
    fn request_history(&self, symbol: &str, from_id: u64, to_id: u64) -> Result<u64, FeedError>;
}

fn connection(login: LinkState, market_data: LinkState, reason: Option<&str>) -> FeedEvent {
    FeedEvent::Connection(FeedConnection { login, market_data, reason: reason.map(str::to_string), since: Utc::now() })
}

/// The simulated B3 market as a feed. `drop_every` > 0 loses every n-th trade on the way (a lossy link), which
/// the gap detection and backfill must repair.
pub struct SimFeed {
    market: SimMarket,
    drop_every: u64,
    events: std::sync::OnceLock<mpsc::Sender<FeedEvent>>,
    next_request: AtomicU64,
}

impl SimFeed {
    pub fn new(market: SimMarket, drop_every: u64) -> Arc<SimFeed> {
        Arc::new(SimFeed { market, drop_every, events: std::sync::OnceLock::new(), next_request: AtomicU64::new(1) })
    }
}

/// History answers stream in packets of this many trades.
const PACKET: usize = 1000;

impl Feed for SimFeed {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn start(&self, events: mpsc::Sender<FeedEvent>) {
        let _ = self.events.set(events.clone());
        let mut rx = self.market.subscribe();
        let drop_every = self.drop_every;
        tokio::spawn(async move {
            let _ = events.send(connection(LinkState::Connecting, LinkState::Connecting, None)).await;
            let _ = events.send(connection(LinkState::Connected, LinkState::Connected, None)).await;
            let mut n = 0u64;
            loop {
                let ev = match rx.recv().await {
                    Ok(MarketEvent::Trade(t)) => {
                        n += 1;
                        if drop_every > 0 && n.is_multiple_of(drop_every) {
                            continue;
                        }
                        FeedEvent::Trade(t)
                    }
                    Ok(MarketEvent::Book(b)) => FeedEvent::Book(b),
                    Ok(MarketEvent::BookUpdate(u)) => FeedEvent::BookUpdate(u),
                    Err(RecvError::Lagged(skipped)) => {
                        // Lost events show up as trade-id gaps and are backfilled; report the degradation.
                        tracing::warn!(skipped, "sim feed lagged");
                        connection(LinkState::Connected, LinkState::Degraded, Some("consumer lagged; events skipped"))
                    }
                    Err(RecvError::Closed) => {
                        let _ = events
                            .send(connection(LinkState::Disconnected, LinkState::Disconnected, Some("market stopped")))
                            .await;
                        return;
                    }
                };
                if events.send(ev).await.is_err() {
                    return;
                }
            }
        });
    }

    fn request_history(&self, symbol: &str, from_id: u64, to_id: u64) -> Result<u64, FeedError> {
        let events = self.events.get().cloned().ok_or(FeedError::NotRunning)?;
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let trades = self.market.history(symbol, from_id, to_id);
        let symbol = symbol.to_string();
        tokio::spawn(async move {
            let chunks: Vec<Vec<Trade>> = trades.chunks(PACKET).map(<[Trade]>::to_vec).collect();
            let total = chunks.len().max(1);
            if chunks.is_empty() {
                let _ = events
                    .send(FeedEvent::History { request_id: id, symbol, trades: Vec::new(), progress: 1.0, last: true })
                    .await;
                return;
            }
            for (i, trades) in chunks.into_iter().enumerate() {
                let last = i + 1 == total;
                let progress = (i + 1) as f32 / total as f32;
                let ev = FeedEvent::History { request_id: id, symbol: symbol.clone(), trades, progress, last };
                if events.send(ev).await.is_err() {
                    return;
                }
            }
        });
        Ok(id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Original pacing multiplied by this factor (1.0 = as recorded).
    Times(f64),
    /// As fast as the consumer takes it.
    Max,
}

impl Speed {
    /// Parses `1x`, `10x`, `0.5x` or `max`.
    pub fn parse(s: &str) -> Option<Speed> {
        if s.eq_ignore_ascii_case("max") {
            return Some(Speed::Max);
        }
        let f: f64 = s.strip_suffix(['x', 'X']).unwrap_or(s).parse().ok()?;
        (f.is_finite() && f > 0.0).then_some(Speed::Times(f))
    }
}

/// Plays recorded trades (our Parquet layout, a partition, or one file) through the same pipeline.
pub struct ReplayFeed {
    path: PathBuf,
    speed: Speed,
    trades: std::sync::OnceLock<Arc<Vec<Trade>>>,
    events: std::sync::OnceLock<mpsc::Sender<FeedEvent>>,
    next_request: AtomicU64,
}

impl ReplayFeed {
    /// Loads the trades now, so a bad path is an error at start-up rather than a silent empty feed.
    pub fn open(path: PathBuf, speed: Speed) -> Result<Arc<ReplayFeed>, market_store::StoreError> {
        let trades = market_store::read_trades(&path)?;
        let feed = ReplayFeed {
            path,
            speed,
            trades: std::sync::OnceLock::new(),
            events: std::sync::OnceLock::new(),
            next_request: AtomicU64::new(1),
        };
        let _ = feed.trades.set(Arc::new(trades));
        Ok(Arc::new(feed))
    }

    /// Replays trades already in memory (generated, or loaded by the caller), sorted by exchange time.
    pub fn from_trades(mut trades: Vec<Trade>, speed: Speed) -> Arc<ReplayFeed> {
        trades.sort_by(|a, b| a.exchange_ts.cmp(&b.exchange_ts).then(a.trade_id.cmp(&b.trade_id)));
        let feed = ReplayFeed {
            path: PathBuf::from("(memory)"),
            speed,
            trades: std::sync::OnceLock::new(),
            events: std::sync::OnceLock::new(),
            next_request: AtomicU64::new(1),
        };
        let _ = feed.trades.set(Arc::new(trades));
        Arc::new(feed)
    }

    pub fn len(&self) -> usize {
        self.trades.get().map_or(0, |t| t.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn first_trade_ts(&self) -> Option<DateTime<Utc>> {
        self.trades.get().and_then(|t| t.first()).map(|t| t.exchange_ts)
    }
}

impl Feed for ReplayFeed {
    fn name(&self) -> &'static str {
        "replay"
    }

    fn start(&self, events: mpsc::Sender<FeedEvent>) {
        let _ = self.events.set(events.clone());
        let trades = self.trades.get().cloned().unwrap_or_default();
        let speed = self.speed;
        let path = self.path.display().to_string();
        tokio::spawn(async move {
            let _ = events.send(connection(LinkState::Connected, LinkState::Connected, None)).await;
            let started = tokio::time::Instant::now();
            let first = trades.first().map(|t| t.exchange_ts);
            for t in trades.iter() {
                if let (Speed::Times(f), Some(first)) = (speed, first) {
                    let offset = (t.exchange_ts - first).to_std().unwrap_or_default().div_f64(f);
                    tokio::time::sleep_until(started + offset).await;
                }
                if events.send(FeedEvent::Trade(t.clone())).await.is_err() {
                    return;
                }
            }
            let reason = format!("end of replay of {path}");
            let _ = events.send(connection(LinkState::Connected, LinkState::Disconnected, Some(&reason))).await;
        });
    }

    fn request_history(&self, symbol: &str, from_id: u64, to_id: u64) -> Result<u64, FeedError> {
        let events = self.events.get().cloned().ok_or(FeedError::NotRunning)?;
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let found: Vec<Trade> = self
            .trades
            .get()
            .map(|all| {
                all.iter()
                    .filter(|t| t.symbol == symbol && t.trade_id >= from_id && t.trade_id <= to_id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let symbol = symbol.to_string();
        tokio::spawn(async move {
            let _ = events
                .send(FeedEvent::History { request_id: id, symbol, trades: found, progress: 1.0, last: true })
                .await;
        });
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds() {
        assert_eq!(Speed::parse("max"), Some(Speed::Max));
        assert_eq!(Speed::parse("10x"), Some(Speed::Times(10.0)));
        assert_eq!(Speed::parse("1"), Some(Speed::Times(1.0)));
        assert_eq!(Speed::parse("0x"), None);
        assert_eq!(Speed::parse("fast"), None);
    }
}
