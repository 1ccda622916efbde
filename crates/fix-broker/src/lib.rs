//! The FIX 4.4 broker adapter: the Order Manager's [`Broker`] over a [`fix`] initiator session.
//!
//! Orders go out as NewOrderSingle (D) with `SecurityExchange=BVMF`, cancels as OrderCancelRequest (F), and after
//! every logon the adapter asks the status (OrderStatusRequest, H) of every order it has working, so fills that
//! happened while the connection was down are booked (once: resent reports are de-duplicated by ExecID and the
//! transition table, and a status answer only adds what no report showed). ExecutionReports (8),
//! OrderCancelRejects (9), BusinessMessageRejects (j) and session Rejects (3) become [`BrokerEvent`]s.
//!
//! ClOrdIDs are `<prefix>.<order id>.<n>`: the prefix is drawn once per store (so a new data directory never
//! repeats an old one's ids at the same broker), `n` counts the order's requests (0 the order, then each cancel).
//! The current ClOrdID of every order is written down before its request is sent, so a restart can still cancel
//! or ask about what is working.

pub mod orders;
mod wire;

use chrono::{DateTime, Utc};
use clock::SharedClock;
use domain::broker::{Broker, BrokerConnection, BrokerError, BrokerEvent, BrokerOrderSnapshot, LinkState};
use domain::order::{Amendment, Order, OrderEvent, OrderId, OrderStatus};
use fix::session::{self, SessionConfig, SessionEvent, SessionHandle, SessionStatus};
use fix::MessageBuilder;
use fix::{tags, Message, Schedule};
use orders::Tracked;
use parking_lot::Mutex;
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One FIX connection's settings, as written in a `[[brokers]]` entry or the file `TS_BROKER=fix:PATH` names.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FixSettings {
    pub host: String,
    pub port: u16,
    pub sender_comp_id: String,
    pub target_comp_id: String,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    /// ResetSeqNumFlag(141)=Y on every logon.
    #[serde(default)]
    pub reset_on_logon: bool,
    /// Account(1) on every order; without it, the order's own account name.
    pub account: Option<String>,
    #[serde(default = "default_exchange")]
    pub security_exchange: String,
    /// The session window in São Paulo time (`HH:MM`); both or neither.
    pub start: Option<String>,
    pub end: Option<String>,
    /// Weekdays of the window (`mon`..`sun`); default Monday to Friday.
    #[serde(default)]
    pub days: Vec<String>,
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min_ms: u64,
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max_ms: u64,
    #[serde(default = "default_logon_timeout")]
    pub logon_timeout_secs: u64,
    pub username: Option<String>,
    /// The environment variable holding Password(554): secrets stay out of configuration files.
    pub password_env: Option<String>,
}

fn default_heartbeat() -> u64 {
    30
}
fn default_exchange() -> String {
    "BVMF".into()
}
fn default_reconnect_min() -> u64 {
    1000
}
fn default_reconnect_max() -> u64 {
    30_000
}
fn default_logon_timeout() -> u64 {
    10
}

impl FixSettings {
    pub fn from_file(path: &Path) -> Result<FixSettings, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let s: FixSettings = toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        s.check()?;
        Ok(s)
    }

    pub fn check(&self) -> Result<(), String> {
        let id_ok = |v: &str| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
        if !id_ok(&self.sender_comp_id) || !id_ok(&self.target_comp_id) {
            return Err("sender_comp_id and target_comp_id must be 1 to 64 printable characters".into());
        }
        if self.heartbeat_secs == 0 || self.heartbeat_secs > 3600 {
            return Err("heartbeat_secs must be 1 to 3600".into());
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            return Err("reconnect_min_ms must be positive and at most reconnect_max_ms".into());
        }
        self.schedule()?;
        Ok(())
    }

    fn schedule(&self) -> Result<Option<Schedule>, String> {
        match (&self.start, &self.end) {
            (None, None) => Ok(None),
            (Some(s), Some(e)) => Schedule::parse(s, e, &self.days).map(Some),
            _ => Err("give both start and end of the session window, or neither".into()),
        }
    }

    /// Where this session keeps its store and FIX log under the data directory.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join("fix").join(format!("{}-{}", self.sender_comp_id, self.target_comp_id))
    }

    pub fn session_config(&self, data_dir: &Path) -> Result<SessionConfig, String> {
        let password = match &self.password_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| format!("password_env: {var} is not set"))?),
        };
        Ok(SessionConfig {
            host: self.host.clone(),
            port: self.port,
            sender_comp_id: self.sender_comp_id.clone(),
            target_comp_id: self.target_comp_id.clone(),
            heartbeat: Duration::from_secs(self.heartbeat_secs),
            reset_on_logon: self.reset_on_logon,
            dir: self.dir(data_dir),
            schedule: self.schedule()?,
            reconnect_min: Duration::from_millis(self.reconnect_min_ms),
            reconnect_max: Duration::from_millis(self.reconnect_max_ms),
            logon_timeout: Duration::from_secs(self.logon_timeout_secs.max(1)),
            username: self.username.clone(),
            password,
        })
    }
}

/// The orders the adapter routed and the file that remembers their ClOrdIDs.
struct Desk {
    prefix: String,
    orders: HashMap<OrderId, Tracked>,
    ids: File,
}

impl Desk {
    fn cl_ord_id(&self, order_id: OrderId, n: u32) -> String {
        format!("{}.{order_id}.{n}", self.prefix)
    }

    /// The order a ClOrdID of ours names.
    fn order_of(&self, cl_ord_id: &str) -> Option<OrderId> {
        let rest = cl_ord_id.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        let (id, n) = rest.split_once('.')?;
        n.parse::<u32>().ok()?;
        id.parse().ok()
    }

    /// A working order and the ClOrdID of its next request (a cancel or a replace), written down before it leaves.
    fn next_request(&mut self, order_id: OrderId) -> Result<(&mut Tracked, String), BrokerError> {
        let Some(t) = self.orders.get_mut(&order_id) else { return Err(BrokerError::UnknownOrder(order_id)) };
        if !t.status.is_open() {
            return Err(BrokerError::Refused(format!("order {order_id} is no longer working")));
        }
        let request_id = format!("{}.{order_id}.{}", self.prefix, t.uses);
        t.uses += 1;
        writeln!(self.ids, "{} {} {}", t.order_id, t.cl_ord_id, t.uses)
            .map_err(|e| BrokerError::Refused(format!("cannot record the ClOrdID: {e}")))?;
        Ok((t, request_id))
    }

    /// Writes down an order's current ClOrdID and how many it has used, before the request leaves.
    fn note(&mut self, t: &Tracked) -> std::io::Result<()> {
        writeln!(self.ids, "{} {} {}", t.order_id, t.cl_ord_id, t.uses)
    }
}

pub struct FixBroker {
    session: SessionHandle,
    shared: Arc<Shared>,
    account: Option<String>,
    exchange: String,
}

/// What the requests (on callers' threads) and the session's events (on its thread) share.
struct Shared {
    desk: Mutex<Desk>,
    events: mpsc::UnboundedSender<BrokerEvent>,
    clock: SharedClock,
    name: String,
}

impl FixBroker {
    /// Opens the session's store under `data_dir`, starts the session (on its own thread) and the task that turns
    /// its messages into broker events. `restore` are the Order Manager's open orders; an order still PENDING_NEW
    /// that never reached this adapter before a restart is rejected at once (it was never sent).
    pub fn start(
        settings: &FixSettings,
        data_dir: &Path,
        restore: Vec<Order>,
        clock: SharedClock,
    ) -> Result<(Arc<FixBroker>, mpsc::UnboundedReceiver<BrokerEvent>), String> {
        settings.check()?;
        let config = settings.session_config(data_dir)?;
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let prefix = load_prefix(&dir, clock.now())?;
        let known = load_ids(&dir.join("orders.ids"))?;
        let (events, events_rx) = mpsc::unbounded_channel();
        let mut tracked = HashMap::new();
        let now = clock.now();
        for o in restore.into_iter().filter(|o| o.status.is_open()) {
            match known.get(&o.id) {
                Some((cl, uses)) => {
                    tracked.insert(o.id, restored(&o, cl.clone(), *uses));
                }
                None if o.status == OrderStatus::PendingNew => {
                    let event = OrderEvent::Rejected {
                        code: "NOT_SENT".into(),
                        reason: "the order never reached the FIX session before the restart".into(),
                    };
                    let _ = events.send(BrokerEvent { order_id: o.id, event, ts: now });
                }
                None => {
                    let cl = format!("{prefix}.{}.0", o.id);
                    tracing::warn!(order_id = o.id, "no ClOrdID on record for a working order; assuming its first");
                    tracked.insert(o.id, restored(&o, cl, 1));
                }
            }
        }
        // Rewritten with only what is still working, so the file does not grow forever.
        let ids = rewrite_ids(&dir.join("orders.ids"), tracked.values())?;
        let name = format!("{}->{}", config.sender_comp_id, config.target_comp_id);
        let desk = Mutex::new(Desk { prefix, orders: tracked, ids });
        let shared = Arc::new(Shared { desk, events, clock, name });
        // The broker's messages are turned into events on the session's own thread: no hop to another task.
        let inbound = shared.clone();
        let session = session::start_with(config, shared.clock.clone(), move |ev, outbox| inbound.on_event(ev, outbox))
            .map_err(|e| format!("cannot start the FIX session: {e}"))?;
        let broker = Arc::new(FixBroker {
            session,
            shared,
            account: settings.account.clone(),
            exchange: settings.security_exchange.clone(),
        });
        Ok((broker, events_rx))
    }

    pub fn session(&self) -> &SessionHandle {
        &self.session
    }

    /// Logs out and stops the session.
    pub fn stop(&self) {
        self.session.stop();
    }
}

impl Shared {
    /// Runs on the session's thread, for each event in order; never blocks (events leave on an unbounded channel).
    fn on_event(&self, ev: SessionEvent, outbox: &mut Vec<MessageBuilder>) {
        match ev {
            SessionEvent::LoggedOn => self.ask_status_of_working_orders(outbox),
            SessionEvent::LoggedOut { reason } => {
                tracing::warn!(session = %self.name, reason = %reason, "FIX order routing is down");
            }
            SessionEvent::App(m) => self.on_app(&m),
            SessionEvent::Rejected { ref_seq, reason, original } => self.on_session_reject(ref_seq, &reason, original),
        }
    }

    fn emit(&self, order_id: OrderId, events: Vec<OrderEvent>, now: DateTime<Utc>) {
        for event in events {
            let _ = self.events.send(BrokerEvent { order_id, event, ts: now });
        }
    }

    fn ask_status_of_working_orders(&self, outbox: &mut Vec<MessageBuilder>) {
        let mut desk = self.desk.lock();
        let now = self.clock.now();
        // Orders that ended a while ago are forgotten here (a late duplicate of theirs is then only logged), so
        // the map holds the working orders and the recent ones, not the whole history of a long-running process.
        desk.orders.retain(|_, t| t.ended_at.is_none_or(|end| now - end < chrono::Duration::minutes(30)));
        let before = outbox.len();
        outbox.extend(desk.orders.values().filter(|t| t.status.is_open()).map(|t| wire::status_request(t, now)));
        let asked = outbox.len() - before;
        tracing::info!(session = %self.name, orders = asked, "asking the broker for the status of working orders");
    }

    fn on_app(&self, m: &Message) {
        let now = self.clock.now();
        let mut desk = self.desk.lock();
        let by = |tag| m.get_str(tag).and_then(|cl| desk.order_of(cl));
        match m.msg_type() {
            b"8" => {
                let Some(id) = by(tags::CL_ORD_ID).or_else(|| by(tags::ORIG_CL_ORD_ID)) else {
                    return unknown(m);
                };
                let Some(t) = desk.orders.get_mut(&id) else { return unknown(m) };
                let cl_before = t.cl_ord_id.clone();
                let events = t.on_execution_report(m, now);
                if t.cl_ord_id != cl_before {
                    let t = t.clone();
                    if let Err(e) = desk.note(&t) {
                        tracing::error!(order_id = id, error = %e, "cannot record the order's new ClOrdID");
                    }
                }
                self.emit(id, events, now);
            }
            b"9" => {
                let Some(id) = by(tags::ORIG_CL_ORD_ID).or_else(|| by(tags::CL_ORD_ID)) else { return unknown(m) };
                let Some(t) = desk.orders.get_mut(&id) else { return unknown(m) };
                let reason = m.get_str(tags::TEXT).unwrap_or("rejected by the broker").to_string();
                let event = if m.get(tags::CXL_REJ_RESPONSE_TO) == Some(b"2") {
                    OrderEvent::ReplaceRejected { reason }
                } else {
                    OrderEvent::CancelRejected { reason }
                };
                let events = t.apply_at(event, Some(now)).into_iter().collect();
                self.emit(id, events, now);
            }
            b"j" => {
                let reason = m.get_str(tags::TEXT).unwrap_or("business message reject").to_string();
                tracing::warn!(message = %m.display(), "BusinessMessageReject from the broker");
                let Some(id) = by(379) else { return };
                if let Some(t) = desk.orders.get_mut(&id) {
                    let event = refusal(m.get(tags::REF_MSG_TYPE).unwrap_or_default(), reason);
                    let events = t.apply_at(event, Some(now)).into_iter().collect();
                    self.emit(id, events, now);
                }
            }
            other => {
                tracing::warn!(msg_type = %String::from_utf8_lossy(other), "application message not handled");
            }
        }
    }

    fn on_session_reject(&self, ref_seq: u64, reason: &str, original: Option<Message>) {
        tracing::error!(ref_seq, reason, "the broker rejected one of our messages at the session level");
        let Some(original) = original else { return };
        let now = self.clock.now();
        let mut desk = self.desk.lock();
        let Some(id) = original.get_str(tags::CL_ORD_ID).and_then(|cl| desk.order_of(cl)) else { return };
        if let Some(t) = desk.orders.get_mut(&id) {
            let event = refusal(original.msg_type(), format!("FIX session reject: {reason}"));
            let events = t.apply_at(event, Some(now)).into_iter().collect();
            self.emit(id, events, now);
        }
    }
}

/// What the refusal of one of our requests (by its MsgType) means: a refused order is rejected, a refused cancel or
/// replace leaves the order working as it was.
fn refusal(request: &[u8], reason: String) -> OrderEvent {
    match request {
        b"F" => OrderEvent::CancelRejected { reason },
        b"G" => OrderEvent::ReplaceRejected { reason },
        _ => OrderEvent::Rejected { code: "BROKER_REJECT".into(), reason },
    }
}

fn unknown(m: &Message) {
    metrics::counter!("ts_fix_unknown_orders_total").increment(1);
    tracing::warn!(message = %m.display(), "a broker message about an order we do not know");
}

fn restored(o: &Order, cl_ord_id: String, uses: u32) -> Tracked {
    Tracked {
        order_id: o.id,
        symbol: o.symbol,
        side: o.side,
        quantity: o.quantity,
        cl_ord_id,
        uses,
        status: o.status,
        cum: o.filled_quantity,
        value: i128::from(o.filled_value.units()),
        exec_ids: o.fills.iter().map(|f| f.exec_id.clone()).collect(),
        broker_order_id: o.broker_order_id.clone(),
        pending_replace: None,
        ended_at: None,
    }
}

fn load_prefix(dir: &Path, now: DateTime<Utc>) -> Result<String, String> {
    let path = dir.join("clordid-prefix");
    match std::fs::read_to_string(&path) {
        Ok(p) if !p.trim().is_empty() => Ok(p.trim().to_string()),
        _ => {
            // Base 36 of the creation time in milliseconds: short, and different for every store.
            let mut n = now.timestamp_millis().unsigned_abs();
            let mut p = Vec::new();
            while n > 0 {
                p.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
                n /= 36;
            }
            p.reverse();
            let p = String::from_utf8_lossy(&p).into_owned();
            std::fs::write(&path, &p).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(p)
        }
    }
}

fn load_ids(path: &Path) -> Result<HashMap<OrderId, (String, u32)>, String> {
    let mut out = HashMap::new();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut parts = line.split_whitespace();
        if let (Some(id), Some(cl), Some(uses)) = (parts.next(), parts.next(), parts.next()) {
            if let (Ok(id), Ok(uses)) = (id.parse(), uses.parse()) {
                out.insert(id, (cl.to_string(), uses));
            }
        }
    }
    Ok(out)
}

fn rewrite_ids<'a>(path: &Path, working: impl Iterator<Item = &'a Tracked>) -> Result<File, String> {
    let tmp = path.with_extension("tmp");
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = File::create(&tmp).map_err(err)?;
    for t in working {
        writeln!(f, "{} {} {}", t.order_id, t.cl_ord_id, t.uses).map_err(err)?;
    }
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    OpenOptions::new().append(true).open(path).map_err(err)
}

impl Broker for FixBroker {
    fn name(&self) -> &'static str {
        "fix"
    }

    fn connection(&self) -> BrokerConnection {
        let state = match self.session.info().status {
            SessionStatus::LoggedOn => LinkState::Connected,
            SessionStatus::Connecting | SessionStatus::LoggingOn => LinkState::Connecting,
            SessionStatus::LoggingOut => LinkState::Degraded,
            SessionStatus::Disconnected | SessionStatus::OutOfSchedule | SessionStatus::Stopped => {
                LinkState::Disconnected
            }
        };
        // Market data does not come through order entry: the feed reports its own state.
        BrokerConnection { login: state, routing: state, market_data: LinkState::Disconnected }
    }

    fn submit(&self, order: &Order) -> Result<(), BrokerError> {
        if !self.session.is_logged_on() {
            return Err(BrokerError::RoutingDown(format!("FIX session {} is not logged on", self.session.name())));
        }
        let mut desk = self.shared.desk.lock();
        let cl_ord_id = desk.cl_ord_id(order.id, 0);
        let t = restored(order, cl_ord_id, 1);
        desk.note(&t).map_err(|e| BrokerError::Refused(format!("cannot record the ClOrdID: {e}")))?;
        let account = self.account.as_deref().unwrap_or(order.account.as_str());
        let msg = wire::new_order(&t.cl_ord_id, order, account, &self.exchange, self.shared.clock.now());
        desk.orders.insert(order.id, t);
        self.session.send(msg).map_err(|e| {
            desk.orders.remove(&order.id);
            BrokerError::RoutingDown(e.to_string())
        })
    }

    fn cancel(&self, order_id: OrderId) -> Result<(), BrokerError> {
        let mut desk = self.shared.desk.lock();
        let (t, request_id) = desk.next_request(order_id)?;
        let msg = wire::cancel(t, &request_id, self.shared.clock.now());
        // The Order Manager booked CancelRequested before calling; the adapter's view follows.
        let _ = t.apply(OrderEvent::CancelRequested);
        self.session.send(msg).map_err(|e| {
            let _ = t.apply(OrderEvent::CancelRejected { reason: e.to_string() });
            BrokerError::RoutingDown(e.to_string())
        })
    }

    fn replace(&self, order: &Order, amendment: &Amendment) -> Result<(), BrokerError> {
        let mut desk = self.shared.desk.lock();
        let (t, request_id) = desk.next_request(order.id)?;
        let account = self.account.as_deref().unwrap_or(order.account.as_str());
        let msg = wire::replace(t, &request_id, order, amendment, account, &self.exchange, self.shared.clock.now());
        t.pending_replace = Some((request_id, *amendment));
        self.session.send(msg).map_err(|e| {
            t.pending_replace = None;
            BrokerError::RoutingDown(e.to_string())
        })
    }

    fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
        let desk = self.shared.desk.lock();
        desk.orders
            .values()
            .filter(|t| t.status.is_open())
            .map(|t| BrokerOrderSnapshot {
                order_id: t.order_id,
                broker_order_id: t.broker_order_id.clone().unwrap_or_else(|| t.cl_ord_id.clone()),
                filled_quantity: t.cum,
            })
            .collect()
    }
}
