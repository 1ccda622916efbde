//! Feed adapters: where market data comes from.
//!
//! The trait follows the broker DLL's semantics: everything arrives asynchronously as [`FeedEvent`]s on one
//! stream (connection state per dimension, trades, books, history packets with progress and a last-packet flag);
//! requests only say "accepted" or fail at once. Implementations: [`SimFeed`] (the simulated B3 market) and
//! [`ReplayFeed`] (our own Parquet, at 1×, N× or maximum speed).

use chrono::{DateTime, Utc};
use clock::SharedClock;
use domain::broker::LinkState;
use market_data::{BookSnapshot, Trade};
use market_sim::{MarketEvent, SimMarket};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

/// Connection state per dimension, each with a reason when not connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Where a feed delivers its events. The consumer runs on the feed's own thread or task, as a real adapter's
/// receive loop would call it: a trade is validated, published and seen by inline strategies before the next one
/// is read, with no queue in between (each hand-off between threads costs tens of microseconds of wake-up on a
/// busy machine). A slow consumer therefore slows the feed, which is the back-pressure we want.
///
/// The sink also carries the consumer's clock: a feed stamps what it receives with it, never with the wall clock.
#[derive(Clone)]
pub struct FeedSink {
    deliver: Arc<dyn Fn(FeedEvent) + Send + Sync>,
    clock: SharedClock,
}

impl FeedSink {
    pub fn new(clock: SharedClock, f: impl Fn(FeedEvent) + Send + Sync + 'static) -> FeedSink {
        FeedSink { deliver: Arc::new(f), clock }
    }

    pub fn send(&self, ev: FeedEvent) {
        (self.deliver)(ev)
    }

    /// The time a feed stamps on what it receives.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Reports the link's state, stamped now.
    pub fn connection(&self, login: LinkState, market_data: LinkState, reason: Option<&str>) {
        let since = self.now();
        self.send(FeedEvent::Connection(FeedConnection {
            login,
            market_data,
            reason: reason.map(str::to_string),
            since,
        }))
    }
}

pub trait Feed: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Starts producing events into `events`. Called once.
    fn start(&self, events: FeedSink);

    /// Asks for the trades with ids in `[from_id, to_id]`; they arrive as [`FeedEvent::History`] packets.
    fn request_history(&self, symbol: &str, from_id: u64, to_id: u64) -> Result<u64, FeedError>;
}

/// Reconnection delays: doubling from `min` to `max`, reset by a successful connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max: max.max(min), next: min }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

impl Default for Backoff {
    /// 1 s doubling to 30 s, as broker-adapters.md asks of every adapter.
    fn default() -> Backoff {
        Backoff::new(Duration::from_secs(1), Duration::from_secs(30))
    }
}

/// The simulated B3 market as a feed. `drop_every` > 0 loses every n-th trade on the way (a lossy link), which
/// the gap detection and backfill must repair; [`SimFeed::interrupt`] takes the link down for a while, which the
/// feed survives by reconnecting with backoff, taking fresh book snapshots and backfilling the trades it missed.
pub struct SimFeed {
    market: SimMarket,
    drop_every: u64,
    backoff: Backoff,
    /// `Some(reason)` while the link is down.
    link: watch::Sender<Option<String>>,
    events: std::sync::OnceLock<FeedSink>,
    next_request: AtomicU64,
}

impl SimFeed {
    pub fn new(market: SimMarket, drop_every: u64) -> Arc<SimFeed> {
        Self::with_backoff(market, drop_every, Backoff::default())
    }

    pub fn with_backoff(market: SimMarket, drop_every: u64, backoff: Backoff) -> Arc<SimFeed> {
        Arc::new(SimFeed {
            market,
            drop_every,
            backoff,
            link: watch::channel(None).0,
            events: std::sync::OnceLock::new(),
            next_request: AtomicU64::new(1),
        })
    }

    /// Cuts the link to the market for `outage`: the session drops at once and connection attempts fail until
    /// the outage is over. Everything printed meanwhile is lost on the way, as on a real network.
    pub fn interrupt(&self, outage: Duration, reason: &str) {
        self.cut(reason);
        let link = self.link.clone();
        tokio::spawn(async move {
            tokio::time::sleep(outage).await;
            link.send_replace(None);
        });
    }
}

impl SimFeed {
    /// Cuts the link until [`SimFeed::restore`]: what [`SimFeed::interrupt`] does, with the end in the caller's hands
    /// (a test ends the outage after the retries it wants to see, not after a wall-clock delay).
    pub fn cut(&self, reason: &str) {
        self.link.send_replace(Some(reason.to_string()));
    }

    /// Ends an outage begun by [`SimFeed::cut`].
    pub fn restore(&self) {
        self.link.send_replace(None);
    }
}

/// History answers stream in packets of this many trades.
const PACKET: usize = 1000;

enum SessionEnd {
    Lost(String),
    MarketStopped,
}

impl SimFeed {
    /// One connected session: the feed's view of the market from subscription until the link drops.
    async fn session(
        market: &SimMarket,
        link: &mut watch::Receiver<Option<String>>,
        events: &FeedSink,
        drop_every: u64,
        n: &mut u64,
    ) -> SessionEnd {
        let mut rx = market.subscribe();
        // A new subscriber starts from snapshots, as a real feed sends on subscription: incremental updates from
        // before the drop cannot be applied any more.
        let now = events.now();
        for ins in market.instruments().iter() {
            if let Some(b) = market.book(&ins.symbol, market_sim::PUBLISHED_DEPTH, now) {
                events.send(FeedEvent::Book(b));
            }
        }
        events.connection(LinkState::Connected, LinkState::Connected, None);
        loop {
            let received = tokio::select! {
                r = rx.recv() => r,
                down = link.wait_for(Option::is_some) => {
                    let reason = down.ok().and_then(|r| r.clone()).unwrap_or_else(|| "feed stopped".into());
                    return SessionEnd::Lost(reason);
                }
            };
            let ev = match received {
                Ok(MarketEvent::Trade(mut t)) => {
                    *n += 1;
                    if drop_every > 0 && n.is_multiple_of(drop_every) {
                        continue;
                    }
                    t.receive_ts = events.now();
                    FeedEvent::Trade(t)
                }
                Ok(MarketEvent::Book(b)) => FeedEvent::Book(b),
                Ok(MarketEvent::BookUpdate(u)) => FeedEvent::BookUpdate(u),
                Err(RecvError::Lagged(skipped)) => {
                    // Lost events show up as trade-id gaps and are backfilled; report the degradation.
                    tracing::warn!(skipped, "sim feed lagged");
                    events.connection(
                        LinkState::Connected,
                        LinkState::Degraded,
                        Some("consumer lagged; events skipped"),
                    );
                    continue;
                }
                Err(RecvError::Closed) => return SessionEnd::MarketStopped,
            };
            events.send(ev);
        }
    }
}

impl Feed for SimFeed {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn start(&self, events: FeedSink) {
        let _ = self.events.set(events.clone());
        let market = self.market.clone();
        let drop_every = self.drop_every;
        let mut backoff = self.backoff.clone();
        let mut link = self.link.subscribe();
        tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                events.connection(LinkState::Connecting, LinkState::Connecting, None);
                let down = link.borrow_and_update().clone();
                if let Some(reason) = down {
                    let delay = backoff.next_delay();
                    let reason = format!("connect failed: {reason}; retrying in {} ms", delay.as_millis());
                    events.connection(LinkState::Disconnected, LinkState::Disconnected, Some(&reason));
                    tokio::time::sleep(delay).await;
                    continue;
                }
                backoff.reset();
                match Self::session(&market, &mut link, &events, drop_every, &mut n).await {
                    SessionEnd::Lost(reason) => {
                        let reason = format!("link lost: {reason}");
                        tracing::warn!(%reason, "sim feed disconnected");
                        events.connection(LinkState::Disconnected, LinkState::Disconnected, Some(&reason));
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    SessionEnd::MarketStopped => {
                        let reason = Some("market stopped");
                        events.connection(LinkState::Disconnected, LinkState::Disconnected, reason);
                        return;
                    }
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
            if trades.is_empty() {
                events.send(FeedEvent::History {
                    request_id: id,
                    symbol,
                    trades: Vec::new(),
                    progress: 1.0,
                    last: true,
                });
                return;
            }
            let total = trades.len().div_ceil(PACKET);
            for (i, chunk) in trades.chunks(PACKET).enumerate() {
                let last = i + 1 == total;
                let progress = (i + 1) as f32 / total as f32;
                let ev = FeedEvent::History {
                    request_id: id,
                    symbol: symbol.clone(),
                    trades: chunk.to_vec(),
                    progress,
                    last,
                };
                events.send(ev);
                tokio::task::yield_now().await;
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
    events: std::sync::OnceLock<FeedSink>,
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

    fn start(&self, events: FeedSink) {
        let _ = self.events.set(events.clone());
        let trades = self.trades.get().cloned().unwrap_or_default();
        let speed = self.speed;
        let path = self.path.display().to_string();
        tokio::spawn(async move {
            events.connection(LinkState::Connected, LinkState::Connected, None);
            let started = tokio::time::Instant::now();
            let first = trades.first().map(|t| t.exchange_ts);
            for (i, t) in trades.iter().enumerate() {
                match (speed, first) {
                    (Speed::Times(f), Some(first)) => {
                        let offset = (t.exchange_ts - first).to_std().unwrap_or_default().div_f64(f);
                        tokio::time::sleep_until(started + offset).await;
                    }
                    // At full speed, let the runtime's other tasks (HTTP, WebSocket) run now and then.
                    _ if i % 4096 == 4095 => tokio::task::yield_now().await,
                    _ => {}
                }
                events.send(FeedEvent::Trade(t.clone()));
            }
            let reason = format!("end of replay of {path}");
            events.connection(LinkState::Connected, LinkState::Disconnected, Some(&reason));
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
            events.send(FeedEvent::History { request_id: id, symbol, trades: found, progress: 1.0, last: true });
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
