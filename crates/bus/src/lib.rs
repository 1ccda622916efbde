//! The bus between services.
//!
//! Subjects are NATS subjects (`md.trades.PETR4`): dot-separated tokens, and subscriptions may use `*` for one
//! token and `>` for the rest. Messages are the typed [`Event`] enum, serializable as JSON, so a NATS
//! implementation can carry the same events without callers changing; the in-process implementation passes
//! `Arc<Event>` and never serializes.
//!
//! Every subscriber has its own bounded queue. A publisher never waits: when a subscriber's queue is full the
//! message is dropped for that subscriber only, counted, and the subscriber sees the count ([`Subscription::dropped`]),
//! so one slow consumer never slows the feed or anyone else.

use domain::order::Order;
use domain::Position;
use market_data::{BookSnapshot, Candle, Quote, Trade};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Subject names: `md.<channel>.<SYMBOL>` for market data, `oms.<channel>` for the Order Manager.
pub mod subjects {
    pub fn trades(symbol: &str) -> String {
        format!("md.trades.{symbol}")
    }
    pub fn book(symbol: &str) -> String {
        format!("md.book.{symbol}")
    }
    pub fn quotes(symbol: &str) -> String {
        format!("md.quotes.{symbol}")
    }
    pub fn candles(symbol: &str) -> String {
        format!("md.candles.{symbol}")
    }
    pub const ORDERS: &str = "oms.orders";
    pub const FILLS: &str = "oms.fills";
    pub const POSITIONS: &str = "oms.positions";
    pub const RISK: &str = "oms.risk";
    pub const SIGNALS: &str = "tp.signals";
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Trade(Trade),
    Book(BookSnapshot),
    Quote(Quote),
    Candle(Candle),
    Order(Box<Order>),
    Fill {
        order_id: u64,
        symbol: domain::Symbol,
        fill: domain::Fill,
    },
    Position(Position),
    /// Risk-state changes (kill switch, loss warnings) as JSON. A struct variant: a bare number or string would
    /// not survive the internally tagged encoding.
    Risk {
        data: serde_json::Value,
    },
    /// A TP-Capital signal stored or updated, as the API shows it.
    Signal {
        data: serde_json::Value,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("invalid subject {0:?}")]
    InvalidSubject(String),
    #[error("no responder for {0}")]
    NoResponder(String),
    #[error("the responder went away")]
    Gone,
    #[error("cannot connect to the bus at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("bus error: {0}")]
    Remote(String),
}

/// Checks a subject or pattern: non-empty tokens of visible ASCII; wildcards only in patterns, `>` only last.
pub fn valid(subject: &str, pattern: bool) -> bool {
    let tokens: Vec<&str> = subject.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| {
        !t.is_empty()
            && t.bytes().all(|b| b.is_ascii_graphic())
            && match *t {
                "*" => pattern,
                ">" => pattern && i == tokens.len() - 1,
                _ => !t.contains('*') && !t.contains('>'),
            }
    })
}

/// NATS matching: `*` matches one token, a trailing `>` one or more.
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

pub struct Delivery {
    pub subject: Arc<str>,
    pub event: Arc<Event>,
    /// The event's payload as JSON, computed by the first subscriber that asks and shared with the others, so a
    /// message fanned out to many WebSocket clients is serialized once.
    /// `None` when the event went to one subscriber only: nothing to share, and one allocation fewer.
    payload_json: Option<SharedJson>,
}

type SharedJson = Arc<std::sync::OnceLock<Option<Arc<str>>>>;

impl Delivery {
    fn new(subject: Arc<str>, event: Arc<Event>) -> Delivery {
        Delivery { subject, event, payload_json: None }
    }

    /// JSON of the event's payload (the trade, book, quote, candle, order, ...), without the event's type tag.
    pub fn payload_json(&self) -> Option<Arc<str>> {
        match &self.payload_json {
            Some(shared) => shared.get_or_init(|| self.serialize_payload()).clone(),
            None => self.serialize_payload(),
        }
    }

    fn serialize_payload(&self) -> Option<Arc<str>> {
        let v = match &*self.event {
            Event::Trade(t) => serde_json::to_string(t),
            Event::Book(b) => serde_json::to_string(b),
            Event::Quote(q) => serde_json::to_string(q),
            Event::Candle(c) => serde_json::to_string(c),
            Event::Order(o) => serde_json::to_string(o),
            Event::Fill { order_id, fill, .. } => {
                serde_json::to_string(&serde_json::json!({ "order_id": order_id, "fill": fill }))
            }
            Event::Position(p) => serde_json::to_string(p),
            Event::Risk { data } | Event::Signal { data } => serde_json::to_string(data),
        };
        v.ok().map(Arc::from)
    }
}

pub struct Subscription {
    rx: mpsc::Receiver<Delivery>,
    dropped: Arc<AtomicU64>,
    _guard: SubGuard,
}

impl Subscription {
    pub async fn recv(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }

    /// Messages dropped for this subscriber because its queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

enum SubGuard {
    Local {
        bus: std::sync::Weak<Inner>,
        id: u64,
    },
    /// The tasks reading the NATS subscriptions; aborting them drops the subscribers, which unsubscribes.
    Nats(Vec<tokio::task::JoinHandle<()>>),
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        match self {
            SubGuard::Local { bus, id } => {
                if let Some(inner) = bus.upgrade() {
                    inner.unsubscribe(*id);
                }
            }
            SubGuard::Nats(tasks) => tasks.iter().for_each(|t| t.abort()),
        }
    }
}

struct Sub {
    patterns: Vec<String>,
    tx: mpsc::Sender<Delivery>,
    dropped: Arc<AtomicU64>,
}

type Responder = mpsc::Sender<Request>;

#[derive(Default)]
struct Routes {
    subs: HashMap<u64, Sub>,
    /// subject → ids of the matching subscriptions; cleared by any (un)subscribe, rebuilt on the next publish.
    cache: HashMap<Arc<str>, Arc<[u64]>>,
}

#[derive(Default)]
struct Inner {
    routes: RwLock<Routes>,
    next_id: AtomicU64,
    responders: RwLock<HashMap<String, Responder>>,
}

impl Inner {
    fn unsubscribe(&self, id: u64) {
        let mut r = self.routes.write();
        r.subs.remove(&id);
        r.cache.clear();
    }
}

/// The bus: in-process by default, or NATS (`Bus::connect_nats`) so that several processes share it. Callers
/// cannot tell the difference. Cheap to clone.
#[derive(Clone, Default)]
pub struct Bus {
    inner: Arc<Inner>,
    nats: Option<Arc<NatsLink>>,
}

struct NatsLink {
    client: async_nats::Client,
    /// Encoded messages on their way to the connection; bounded, so a stalled server drops rather than blocks.
    out: mpsc::Sender<(String, Vec<u8>)>,
    url: String,
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Connects to a NATS server; events travel as JSON on the same subjects.
    pub async fn connect_nats(url: &str) -> Result<Bus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("tradingsystem")
            .retry_on_initial_connect()
            .connection_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| BusError::Connect { url: url.to_string(), message: e.to_string() })?;
        // retry_on_initial_connect returns at once; wait briefly for the first connection so a wrong URL is an
        // error at start-up, not a silent outage.
        for _ in 0..50 {
            if client.connection_state() == async_nats::connection::State::Connected {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if client.connection_state() != async_nats::connection::State::Connected {
            return Err(BusError::Connect { url: url.to_string(), message: "no connection within 5 s".into() });
        }
        let (out, mut rx) = mpsc::channel::<(String, Vec<u8>)>(65_536);
        let writer = client.clone();
        tokio::spawn(async move {
            while let Some((subject, bytes)) = rx.recv().await {
                if let Err(e) = writer.publish(subject, bytes.into()).await {
                    metrics::counter!("ts_bus_dropped_total").increment(1);
                    tracing::warn!(error = %e, "NATS publish failed");
                }
            }
        });
        Ok(Bus { inner: Arc::default(), nats: Some(Arc::new(NatsLink { client, out, url: url.to_string() })) })
    }

    /// `in-process`, or the NATS server's URL.
    pub fn describe(&self) -> String {
        self.nats.as_ref().map_or_else(|| "in-process".to_string(), |n| n.url.clone())
    }

    /// Whether the bus is usable (always for in-process; connected for NATS).
    pub fn is_up(&self) -> bool {
        self.nats.as_ref().is_none_or(|n| n.client.connection_state() == async_nats::connection::State::Connected)
    }

    /// Subscribes with a queue of `capacity` messages.
    pub fn subscribe(&self, pattern: &str, capacity: usize) -> Result<Subscription, BusError> {
        self.subscribe_many(&[pattern.to_string()], capacity)
    }

    /// One queue for several patterns: a message matching more than one of them is delivered once.
    pub fn subscribe_many(&self, patterns: &[String], capacity: usize) -> Result<Subscription, BusError> {
        if let Some(bad) = patterns.iter().find(|p| !valid(p, true)) {
            return Err(BusError::InvalidSubject(bad.clone()));
        }
        if let Some(n) = &self.nats {
            return Ok(n.subscribe(patterns, capacity));
        }
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let dropped = Arc::new(AtomicU64::new(0));
        {
            let mut r = self.inner.routes.write();
            r.subs.insert(id, Sub { patterns: patterns.to_vec(), tx, dropped: dropped.clone() });
            r.cache.clear();
        }
        Ok(Subscription { rx, dropped, _guard: SubGuard::Local { bus: Arc::downgrade(&self.inner), id } })
    }

    /// Delivers to every matching subscriber that has room; never waits. Returns how many received it.
    pub fn publish(&self, subject: &str, event: Event) -> usize {
        if let Some(n) = &self.nats {
            return n.publish(subject, &event);
        }
        let event = Arc::new(event);
        // The common case (a subject seen before, subscriptions unchanged) takes one read lock.
        {
            let r = self.inner.routes.read();
            if r.subs.is_empty() {
                return 0;
            }
            if let Some((key, ids)) = r.cache.get_key_value(subject) {
                return deliver(&r, key, ids, &event);
            }
        }
        let mut w = self.inner.routes.write();
        let ids: Arc<[u64]> =
            w.subs.iter().filter(|(_, s)| s.patterns.iter().any(|p| matches(p, subject))).map(|(id, _)| *id).collect();
        let key: Arc<str> = Arc::from(subject);
        w.cache.insert(key.clone(), ids.clone());
        deliver(&w, &key, &ids, &event)
    }

    /// Registers the responder for `subject`; requests arrive with a channel for the reply.
    pub fn respond(&self, subject: &str, capacity: usize) -> Result<mpsc::Receiver<Request>, BusError> {
        if !valid(subject, false) {
            return Err(BusError::InvalidSubject(subject.into()));
        }
        let (tx, rx) = mpsc::channel(capacity.max(1));
        match &self.nats {
            Some(n) => n.respond(subject, tx),
            None => {
                self.inner.responders.write().insert(subject.to_string(), tx);
            }
        }
        Ok(rx)
    }

    pub async fn request(&self, subject: &str, payload: serde_json::Value) -> Result<serde_json::Value, BusError> {
        if let Some(n) = &self.nats {
            let bytes = serde_json::to_vec(&payload).map_err(|e| BusError::Remote(e.to_string()))?;
            let reply = n.client.request(subject.to_string(), bytes.into()).await.map_err(|e| {
                if e.kind() == async_nats::RequestErrorKind::NoResponders {
                    BusError::NoResponder(subject.into())
                } else {
                    BusError::Remote(e.to_string())
                }
            })?;
            return serde_json::from_slice(&reply.payload).map_err(|e| BusError::Remote(e.to_string()));
        }
        let responder =
            self.inner.responders.read().get(subject).cloned().ok_or_else(|| BusError::NoResponder(subject.into()))?;
        let (tx, rx) = oneshot::channel();
        responder.send((payload, tx)).await.map_err(|_| BusError::Gone)?;
        rx.await.map_err(|_| BusError::Gone)
    }
}

fn deliver(routes: &Routes, key: &Arc<str>, ids: &[u64], event: &Arc<Event>) -> usize {
    let mut delivered = 0;
    let payload_json: Option<SharedJson> = (ids.len() > 1).then(Default::default);
    for id in ids {
        // An id unsubscribed since the cache was built is simply gone.
        let Some(sub) = routes.subs.get(id) else { continue };
        let d = Delivery { subject: key.clone(), event: event.clone(), payload_json: payload_json.clone() };
        match sub.tx.try_send(d) {
            Ok(()) => delivered += 1,
            Err(mpsc::error::TrySendError::Full(_)) => {
                sub.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("ts_bus_dropped_total").increment(1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
    delivered
}

/// A request and the channel its answer goes back on.
pub type Request = (serde_json::Value, oneshot::Sender<serde_json::Value>);

impl NatsLink {
    fn publish(&self, subject: &str, event: &Event) -> usize {
        let Ok(bytes) = serde_json::to_vec(event) else { return 0 };
        match self.out.try_send((subject.to_string(), bytes)) {
            Ok(()) => 1,
            Err(_) => {
                metrics::counter!("ts_bus_dropped_total").increment(1);
                0
            }
        }
    }

    fn subscribe(&self, patterns: &[String], capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for p in patterns {
            let (client, tx, dropped, pattern) = (self.client.clone(), tx.clone(), dropped.clone(), p.clone());
            tasks.push(tokio::spawn(async move {
                use futures_util::StreamExt;
                let Ok(mut sub) = client.subscribe(pattern).await else { return };
                while let Some(msg) = sub.next().await {
                    let Ok(event) = serde_json::from_slice::<Event>(&msg.payload) else { continue };
                    let d = Delivery::new(Arc::from(msg.subject.as_str()), Arc::new(event));
                    match tx.try_send(d) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!("ts_bus_dropped_total").increment(1);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    }
                }
            }));
        }
        Subscription { rx, dropped, _guard: SubGuard::Nats(tasks) }
    }

    fn respond(&self, subject: &str, tx: mpsc::Sender<Request>) {
        let (client, subject) = (self.client.clone(), subject.to_string());
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let Ok(mut sub) = client.subscribe(subject).await else { return };
            while let Some(msg) = sub.next().await {
                let Some(reply_to) = msg.reply.clone() else { continue };
                let payload = serde_json::from_slice(&msg.payload).unwrap_or(serde_json::Value::Null);
                let (answer_tx, answer_rx) = oneshot::channel();
                if tx.send((payload, answer_tx)).await.is_err() {
                    return;
                }
                if let Ok(answer) = answer_rx.await {
                    if let Ok(bytes) = serde_json::to_vec(&answer) {
                        let _ = client.publish(reply_to, bytes.into()).await;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_matching() {
        assert!(matches("md.trades.PETR4", "md.trades.PETR4"));
        assert!(matches("md.trades.*", "md.trades.PETR4"));
        assert!(matches("md.>", "md.trades.PETR4"));
        assert!(matches("*.trades.>", "md.trades.PETR4"));
        assert!(!matches("md.trades.*", "md.trades"));
        assert!(!matches("md.trades.*", "md.trades.PETR4.x"));
        assert!(!matches("md.>", "md"));
        assert!(!matches("md.book.*", "md.trades.PETR4"));
        assert!(valid("md.trades.*", true) && !valid("md.trades.*", false));
        assert!(!valid("md..x", true) && !valid("md.>.x", true) && !valid("", true) && !valid("a b", true));
    }

    fn risk(n: i64) -> Event {
        Event::Risk { data: serde_json::json!({ "n": n }) }
    }

    #[tokio::test]
    async fn fan_out_and_isolation_of_slow_subscribers() {
        let bus = Bus::new();
        let mut fast = bus.subscribe("oms.>", 1000).unwrap();
        let slow = bus.subscribe("oms.risk", 2).unwrap();
        let mut other = bus.subscribe("md.*.PETR4", 10).unwrap();
        for i in 0..100 {
            bus.publish(subjects::RISK, risk(i));
        }
        bus.publish(&subjects::trades("VALE3"), risk(0));
        let mut got = 0;
        while let Some(d) = fast.try_recv() {
            assert_eq!(&*d.subject, "oms.risk");
            got += 1;
        }
        assert_eq!(got, 100, "the fast subscriber got everything");
        assert_eq!(slow.dropped(), 98, "the slow one lost only its own overflow");
        assert!(other.try_recv().is_none());
        drop(slow);
        assert_eq!(bus.publish(subjects::RISK, risk(1)), 1, "a dropped subscription is gone");
        let mut many = bus.subscribe_many(&["oms.*".into(), "oms.risk".into()], 10).unwrap();
        bus.publish(subjects::RISK, risk(2));
        assert!(many.try_recv().is_some());
        assert!(many.try_recv().is_none(), "delivered once even when two patterns match");
    }

    #[tokio::test]
    async fn request_reply() {
        let bus = Bus::new();
        let mut rx = bus.respond("svc.echo", 8).unwrap();
        tokio::spawn(async move {
            while let Some((v, reply)) = rx.recv().await {
                let _ = reply.send(serde_json::json!({ "echo": v }));
            }
        });
        let r = bus.request("svc.echo", serde_json::json!(42)).await.unwrap();
        assert_eq!(r["echo"], 42);
        assert!(matches!(bus.request("svc.none", serde_json::json!(1)).await, Err(BusError::NoResponder(_))));
    }

    #[test]
    fn events_serialize_for_a_wire_bus() {
        let e = risk(7);
        let json = serde_json::to_string(&e).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap();
        assert!(matches!(back, Event::Risk { data } if data["n"] == 7));
    }
}
