//! The FIX 4.4 initiator session: logon, heartbeats and test requests, sequence numbers kept across restarts,
//! resend requests both ways, gap fills, reject, logout, reconnect with backoff, and a schedule.
//!
//! The session runs on its own thread (a single-threaded runtime), so its small blocking writes (sequence numbers,
//! the message store, the FIX log) never sit on the server's async workers. The application talks to it through a
//! [`SessionHandle`] (send, stop, state) and hears from it through a channel of [`SessionEvent`]s, in the order
//! the counterparty sent them.

use crate::codec::{Decoder, FrameError, Message, MessageBuilder};
use crate::log::{Direction, FixLog};
use crate::schedule::Schedule;
use crate::store::SessionStore;
use crate::tags::{self, msg_type, reject_reason};
use chrono::{DateTime, Utc};
use clock::SharedClock;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub host: String,
    pub port: u16,
    pub sender_comp_id: String,
    pub target_comp_id: String,
    pub heartbeat: Duration,
    /// Send ResetSeqNumFlag(141)=Y on every logon (both sides start again at 1).
    pub reset_on_logon: bool,
    /// The session's store and FIX log live here.
    pub dir: PathBuf,
    /// `None`: the session may be up at any time (one endless session period).
    pub schedule: Option<Schedule>,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub logon_timeout: Duration,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl SessionConfig {
    /// The defaults for everything but where to connect and who we are.
    pub fn new(host: &str, port: u16, sender: &str, target: &str, dir: PathBuf) -> SessionConfig {
        SessionConfig {
            host: host.to_string(),
            port,
            sender_comp_id: sender.to_string(),
            target_comp_id: target.to_string(),
            heartbeat: Duration::from_secs(30),
            reset_on_logon: false,
            dir,
            schedule: None,
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            logon_timeout: Duration::from_secs(10),
            username: None,
            password: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SessionStatus {
    Disconnected,
    Connecting,
    LoggingOn,
    LoggedOn,
    LoggingOut,
    /// Outside the configured schedule: not trying to connect.
    OutOfSchedule,
    Stopped,
}

/// What the session is doing, for `/api/v1/brokers` and health.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    pub status: SessionStatus,
    /// Why it is in this state (the last disconnect's reason, a logout's text).
    pub detail: String,
    pub since: DateTime<Utc>,
    pub next_sender_seq: u64,
    pub next_target_seq: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub reconnects: u64,
}

#[derive(Debug)]
pub enum SessionEvent {
    /// Logon complete (and any resend request already sent): the application may send, and should ask for the
    /// status of what it has working.
    LoggedOn,
    /// The session went down (or out of schedule); sends are refused until the next `LoggedOn`.
    LoggedOut { reason: String },
    /// An application message, in sequence. `PossDupFlag(43)=Y` means it may have been seen before.
    App(Message),
    /// The counterparty refused one of our messages at the session level (Reject(3)); `original` is our message
    /// when the store still has it.
    Rejected { ref_seq: u64, reason: String, original: Option<Message> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("FIX session {0} is not logged on")]
    NotLoggedOn(String),
    #[error("FIX session {0} has stopped")]
    Stopped(String),
}

enum Command {
    Send(MessageBuilder),
    /// Drops the connection without a logout (tests, operators): the session reconnects.
    Drop,
    /// Both sides start again at 1: logout, then a Logon with ResetSeqNumFlag(141)=Y.
    Reset,
    Stop,
}

/// The application's side of a session. Cheap to clone.
#[derive(Clone)]
pub struct SessionHandle {
    name: Arc<str>,
    commands: mpsc::UnboundedSender<Command>,
    logged_on: Arc<AtomicBool>,
    info: watch::Receiver<SessionInfo>,
}

impl SessionHandle {
    /// Queues an application message (its body: the session writes the header and trailer). Refused at once when
    /// the session is not logged on: nothing is queued for a later connection.
    pub fn send(&self, message: MessageBuilder) -> Result<(), SendError> {
        if !self.logged_on.load(Ordering::Acquire) {
            return Err(SendError::NotLoggedOn(self.name.to_string()));
        }
        self.commands.send(Command::Send(message)).map_err(|_| SendError::Stopped(self.name.to_string()))
    }

    pub fn is_logged_on(&self) -> bool {
        self.logged_on.load(Ordering::Acquire)
    }

    pub fn info(&self) -> SessionInfo {
        self.info.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<SessionInfo> {
        self.info.clone()
    }

    /// Drops the TCP connection without logging out; the session reconnects after its backoff.
    pub fn drop_connection(&self) {
        let _ = self.commands.send(Command::Drop);
    }

    /// Starts the sequence numbers again at 1 on both sides (after a store was lost on either side, say): logs out,
    /// drops the kept messages and logs on with ResetSeqNumFlag(141)=Y. Messages the counterparty has not received
    /// are not resent; the status requests after the logon find where every working order stands.
    pub fn reset_sequence(&self) -> Result<(), SendError> {
        self.commands.send(Command::Reset).map_err(|_| SendError::Stopped(self.name.to_string()))
    }

    /// Logs out (waiting briefly for the counterparty's Logout) and stops for good.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Starts the session on its own thread. Events arrive on the returned receiver.
pub fn start(
    config: SessionConfig,
    clock: SharedClock,
) -> std::io::Result<(SessionHandle, mpsc::UnboundedReceiver<SessionEvent>)> {
    let (events, events_rx) = mpsc::unbounded_channel();
    let handle = start_with(config, clock, move |ev, _: &mut Vec<MessageBuilder>| {
        let _ = events.send(ev);
    })?;
    Ok((handle, events_rx))
}

/// Starts the session on its own thread, calling `on_event` there for every event, in order. It must not block
/// (hand work over a channel): the session reads nothing while it runs. Application messages it pushes into the
/// outbox (its second argument) are sent as soon as it returns, while logged on: how an application answers a
/// logon (status requests) without a race. Saves a thread hop per message over [`start`]'s channel.
pub fn start_with(
    config: SessionConfig,
    clock: SharedClock,
    on_event: impl FnMut(SessionEvent, &mut Vec<MessageBuilder>) + Send + 'static,
) -> std::io::Result<SessionHandle> {
    let store = SessionStore::open(&config.dir, clock.now())?;
    let name: Arc<str> = format!("{}->{}", config.sender_comp_id, config.target_comp_id).into();
    let (commands, rx) = mpsc::unbounded_channel();
    let events: Box<EventHandler> = Box::new(on_event);
    let logged_on = Arc::new(AtomicBool::new(false));
    let info = SessionInfo {
        status: SessionStatus::Disconnected,
        detail: "starting".into(),
        since: clock.now(),
        next_sender_seq: store.next_out(),
        next_target_seq: store.next_in(),
        messages_in: 0,
        messages_out: 0,
        reconnects: 0,
    };
    let (info_tx, info_rx) = watch::channel(info);
    let log = FixLog::new(config.dir.join("log"));
    let session = Session {
        config,
        clock,
        store,
        log,
        events,
        outbox: Vec::new(),
        commands: rx,
        logged_on: logged_on.clone(),
        info: info_tx,
        stopping: false,
        reset_requested: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name(format!("fix-{}", name.replace("->", "-"))).spawn(move || {
        runtime.block_on(session.run());
    })?;
    Ok(SessionHandle { name, commands, logged_on, info: info_rx })
}

type EventHandler = dyn FnMut(SessionEvent, &mut Vec<MessageBuilder>) + Send;

struct Session {
    config: SessionConfig,
    clock: SharedClock,
    store: SessionStore,
    log: FixLog,
    events: Box<EventHandler>,
    /// What the event handler asked to send.
    outbox: Vec<MessageBuilder>,
    commands: mpsc::UnboundedReceiver<Command>,
    logged_on: Arc<AtomicBool>,
    info: watch::Sender<SessionInfo>,
    stopping: bool,
    /// The operator asked for new sequence numbers: the next Logon resets both sides.
    reset_requested: bool,
}

/// Why a connection ended.
enum End {
    Closed(String),
    LoggedOut(String),
    Stop,
}

/// The live connection's bookkeeping.
struct Link {
    writer: OwnedWriteHalf,
    logged_on: bool,
    logout_sent: Option<Instant>,
    last_sent: Instant,
    last_received: Instant,
    test_request: Option<(String, Instant)>,
    logon_deadline: Instant,
    /// A resend we asked for is outstanding until the expected number passes this one.
    resend_until: Option<u64>,
    window_end: Option<DateTime<Utc>>,
    test_ids: u64,
}

fn sending_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d-%H:%M:%S%.3f").to_string()
}

impl Session {
    fn set_status(&self, status: SessionStatus, detail: impl Into<String>) {
        let detail = detail.into();
        let now = self.clock.now();
        self.info.send_modify(|i| {
            if i.status != status {
                i.since = now;
            }
            i.status = status;
            i.detail = detail;
            i.next_sender_seq = self.store.next_out();
            i.next_target_seq = self.store.next_in();
        });
        metrics::gauge!("ts_fix_logged_on", "session" => self.name()).set(if status == SessionStatus::LoggedOn {
            1.0
        } else {
            0.0
        });
    }

    fn emit(&mut self, ev: SessionEvent) {
        (self.events)(ev, &mut self.outbox);
    }

    /// Sends what the event handler queued.
    async fn send_outbox(&mut self, link: &mut Link) -> Result<(), End> {
        while !self.outbox.is_empty() {
            let queued = std::mem::take(&mut self.outbox);
            for body in queued {
                if link.logged_on && link.logout_sent.is_none() {
                    self.send_app(link, &body).await?;
                } else {
                    metrics::counter!("ts_fix_sends_dropped_total").increment(1);
                }
            }
        }
        Ok(())
    }

    fn name(&self) -> String {
        format!("{}->{}", self.config.sender_comp_id, self.config.target_comp_id)
    }

    fn event(&mut self, text: &str) {
        let now = self.clock.now();
        self.log.write(now, Direction::Event, text.as_bytes());
        self.log.flush();
    }

    async fn run(mut self) {
        let mut backoff = self.config.reconnect_min;
        loop {
            if self.stopping {
                break;
            }
            let now = self.clock.now();
            let mut window_end = None;
            if let Some(schedule) = self.config.schedule.clone() {
                match schedule.window_at(now) {
                    None => {
                        self.set_status(SessionStatus::OutOfSchedule, "outside the session schedule");
                        let wait = schedule
                            .next_start(now)
                            .and_then(|t| (t - now).to_std().ok())
                            .unwrap_or(Duration::from_secs(3600));
                        // Re-check at least every minute: the clock may be moved, the schedule is in local time.
                        if self.idle(wait.min(Duration::from_secs(60))).await {
                            break;
                        }
                        continue;
                    }
                    Some((start, end)) => {
                        if self.store.created() < start {
                            // A new session period: both sides number from 1 again (the logon says so).
                            if let Err(e) = self.store.reset(now) {
                                self.fail_store(&e);
                                break;
                            }
                            self.event("new session period: sequence numbers reset");
                        }
                        window_end = Some(end);
                    }
                }
            }
            self.set_status(
                SessionStatus::Connecting,
                format!("connecting to {}:{}", self.config.host, self.config.port),
            );
            let addr = format!("{}:{}", self.config.host, self.config.port);
            let connected = tokio::time::timeout(self.config.logon_timeout, TcpStream::connect(&addr)).await;
            let end = match connected {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    self.event(&format!("connected to {addr}"));
                    self.connected(stream, window_end).await
                }
                Ok(Err(e)) => End::Closed(format!("cannot connect to {addr}: {e}")),
                Err(_) => End::Closed(format!("cannot connect to {addr}: timed out")),
            };
            let was_logged_on = self.logged_on.swap(false, Ordering::AcqRel);
            let reason = match &end {
                End::Closed(r) | End::LoggedOut(r) => r.clone(),
                End::Stop => "stopped".into(),
            };
            self.event(&format!("disconnected: {reason}"));
            if was_logged_on {
                self.emit(SessionEvent::LoggedOut { reason: reason.clone() });
                // Nothing can go out now; the application hears why.
                self.outbox.clear();
                backoff = self.config.reconnect_min;
            }
            if matches!(end, End::Stop) || self.stopping {
                break;
            }
            tracing::warn!(session = %self.name(), reason = %reason, retry_in_ms = backoff.as_millis() as u64, "FIX session down");
            self.set_status(SessionStatus::Disconnected, reason);
            self.info.send_modify(|i| i.reconnects += 1);
            if self.idle(backoff).await {
                break;
            }
            backoff = (backoff * 2).min(self.config.reconnect_max);
        }
        self.logged_on.store(false, Ordering::Release);
        self.set_status(SessionStatus::Stopped, "stopped");
        self.event("stopped");
    }

    /// Waits while disconnected, refusing sends; true when told to stop.
    async fn idle(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => return false,
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Send(_)) => {
                        // Raced a disconnect: the sender already heard "accepted locally". The application learns
                        // the outcome from the status request after the next logon.
                        metrics::counter!("ts_fix_sends_dropped_total").increment(1);
                    }
                    Some(Command::Drop) => {}
                    Some(Command::Reset) => {
                        self.reset_requested = true;
                        // Try now: the operator is waiting for the new logon.
                        return false;
                    }
                    Some(Command::Stop) | None => {
                        self.stopping = true;
                        return true;
                    }
                }
            }
        }
    }

    fn fail_store(&mut self, e: &std::io::Error) {
        tracing::error!(session = %self.name(), error = %e, "FIX session store failed; the session stops");
        self.stopping = true;
    }

    async fn connected(&mut self, stream: TcpStream, window_end: Option<DateTime<Utc>>) -> End {
        let (mut reader, writer) = stream.into_split();
        let now = Instant::now();
        let mut link = Link {
            writer,
            logged_on: false,
            logout_sent: None,
            last_sent: now,
            last_received: now,
            test_request: None,
            logon_deadline: now + self.config.logon_timeout,
            resend_until: None,
            window_end,
            test_ids: 0,
        };
        let reset = self.config.reset_on_logon || std::mem::take(&mut self.reset_requested);
        if reset {
            if let Err(e) = self.store.reset(self.clock.now()) {
                self.fail_store(&e);
                return End::Stop;
            }
            self.event("sequence numbers reset: logon with ResetSeqNumFlag");
        }
        let mut logon = MessageBuilder::new("A");
        logon.int(tags::ENCRYPT_METHOD, 0).int(tags::HEART_BT_INT, self.config.heartbeat.as_secs().max(1));
        if reset {
            logon.field(tags::RESET_SEQ_NUM_FLAG, "Y");
        }
        if let Some(u) = &self.config.username {
            logon.field(tags::USERNAME, u);
        }
        if let Some(p) = &self.config.password {
            logon.field(tags::PASSWORD, p);
        }
        self.set_status(SessionStatus::LoggingOn, "logon sent");
        if let Err(end) = self.send_admin(&mut link, &logon).await {
            return end;
        }
        let mut decoder = Decoder::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                read = reader.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => return End::Closed("the counterparty closed the connection".into()),
                        Ok(n) => n,
                        Err(e) => return End::Closed(format!("read failed: {e}")),
                    };
                    link.last_received = Instant::now();
                    decoder.extend(&buf[..n]);
                    loop {
                        match decoder.next_message() {
                            Ok(Some(msg)) => {
                                if let Some(end) = self.incoming(&mut link, msg).await {
                                    self.log.flush();
                                    return end;
                                }
                                if let Err(end) = self.send_outbox(&mut link).await {
                                    return end;
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                self.log.flush();
                                return self.garbled(&mut link, &e).await;
                            }
                        }
                    }
                    self.log.flush();
                }
                cmd = self.commands.recv() => {
                    match cmd {
                        Some(Command::Send(body)) => {
                            if link.logged_on && link.logout_sent.is_none() {
                                if let Err(end) = self.send_app(&mut link, &body).await {
                                    return end;
                                }
                            } else {
                                metrics::counter!("ts_fix_sends_dropped_total").increment(1);
                            }
                            // Drain what else is queued before flushing the log once.
                            while let Ok(more) = self.commands.try_recv() {
                                match more {
                                    Command::Send(body) if link.logged_on && link.logout_sent.is_none() => {
                                        if let Err(end) = self.send_app(&mut link, &body).await {
                                            return end;
                                        }
                                    }
                                    Command::Send(_) => {}
                                    Command::Drop => return End::Closed("connection dropped on request".into()),
                                    Command::Reset => {
                                        self.reset_requested = true;
                                        let _ = self.logout(&mut link, "sequence numbers reset by the operator").await;
                                        return End::Closed("sequence reset requested".into());
                                    }
                                    Command::Stop => {
                                        self.stopping = true;
                                        if let Err(end) = self.logout(&mut link, "session stopped").await { return end; }
                                    }
                                }
                            }
                            self.log.flush();
                        }
                        Some(Command::Drop) => return End::Closed("connection dropped on request".into()),
                        Some(Command::Reset) => {
                            self.reset_requested = true;
                            let _ = self.logout(&mut link, "sequence numbers reset by the operator").await;
                            return End::Closed("sequence reset requested".into());
                        }
                        Some(Command::Stop) | None => {
                            self.stopping = true;
                            if !link.logged_on {
                                return End::Stop;
                            }
                            if let Err(end) = self.logout(&mut link, "session stopped").await { return end; }
                        }
                    }
                }
                _ = tick.tick() => {
                    if let Some(end) = self.on_timer(&mut link).await {
                        return end;
                    }
                }
            }
        }
    }

    async fn logout(&mut self, link: &mut Link, text: &str) -> Result<(), End> {
        if link.logout_sent.is_some() {
            return Ok(());
        }
        let mut m = MessageBuilder::new("5");
        m.field(tags::TEXT, text);
        self.set_status(SessionStatus::LoggingOut, text);
        self.send_admin(link, &m).await?;
        link.logout_sent = Some(Instant::now());
        Ok(())
    }

    async fn on_timer(&mut self, link: &mut Link) -> Option<End> {
        let now = Instant::now();
        let hb = self.config.heartbeat.max(Duration::from_secs(1));
        if !link.logged_on && now >= link.logon_deadline && link.logout_sent.is_none() {
            return Some(End::Closed("no Logon answer in time".into()));
        }
        if let Some(sent) = link.logout_sent {
            // The counterparty has a few seconds to answer our Logout; then the connection goes anyway.
            if now.duration_since(sent) > Duration::from_secs(2) {
                return Some(if self.stopping { End::Stop } else { End::LoggedOut("no Logout answer".into()) });
            }
            return None;
        }
        if !link.logged_on {
            return None;
        }
        if let Some(end) = link.window_end {
            if self.clock.now() >= end {
                if let Err(e) = self.logout(link, "end of the session schedule").await {
                    return Some(e);
                }
                return None;
            }
        }
        if now.duration_since(link.last_sent) >= hb {
            if let Err(end) = self.send_admin(link, &MessageBuilder::new("0")).await {
                return Some(end);
            }
        }
        let silent = now.duration_since(link.last_received);
        match &link.test_request {
            None if silent >= hb + hb / 5 => {
                link.test_ids += 1;
                let id = format!("TEST{}", link.test_ids);
                let mut m = MessageBuilder::new("1");
                m.field(tags::TEST_REQ_ID, &id);
                if let Err(end) = self.send_admin(link, &m).await {
                    return Some(end);
                }
                link.test_request = Some((id, now));
            }
            Some((_, sent)) if now.duration_since(*sent) >= hb => {
                return Some(End::Closed("no answer to a TestRequest: the counterparty is gone".into()));
            }
            _ => {}
        }
        self.log.flush();
        None
    }

    /// Bytes that are not a FIX message: the stream cannot be trusted past them. Logout says why, the connection
    /// drops, and the next logon's sequence numbers recover whatever was lost (a resend).
    async fn garbled(&mut self, link: &mut Link, e: &FrameError) -> End {
        metrics::counter!("ts_fix_garbled_total").increment(1);
        tracing::warn!(session = %self.name(), error = %e, "garbled FIX stream; logging out");
        let text = format!("garbled message: {e}");
        self.event(&text);
        let _ = self.logout(link, &text).await;
        End::Closed(text)
    }

    async fn write(&mut self, link: &mut Link, raw: &[u8]) -> Result<(), End> {
        self.log.write(self.clock.now(), Direction::Out, raw);
        if let Err(e) = link.writer.write_all(raw).await {
            return Err(End::Closed(format!("write failed: {e}")));
        }
        link.last_sent = Instant::now();
        self.info.send_modify(|i| {
            i.messages_out += 1;
            i.next_sender_seq = self.store.next_out();
        });
        Ok(())
    }

    fn header(&self, msg_type: &[u8], seq: u64, now: DateTime<Utc>) -> MessageBuilder {
        let mut m = MessageBuilder::new(std::str::from_utf8(msg_type).unwrap_or("0"));
        m.field(tags::SENDER_COMP_ID, &self.config.sender_comp_id)
            .field(tags::TARGET_COMP_ID, &self.config.target_comp_id)
            .int(tags::MSG_SEQ_NUM, seq)
            .field(tags::SENDING_TIME, sending_time(now));
        m
    }

    /// A session message: numbered, not kept for resends (a resend replaces it with a gap fill).
    async fn send_admin(&mut self, link: &mut Link, body: &MessageBuilder) -> Result<(), End> {
        let seq = match self.store.take_out() {
            Ok(s) => s,
            Err(e) => {
                self.fail_store(&e);
                return Err(End::Stop);
            }
        };
        let mut m = self.header(body.msg_type(), seq, self.clock.now());
        m.raw_fields(body.body_fields());
        let raw = m.finish();
        self.write(link, &raw).await
    }

    /// An application message: numbered and kept before it is written.
    async fn send_app(&mut self, link: &mut Link, body: &MessageBuilder) -> Result<(), End> {
        let seq = self.store.next_out();
        let mut m = self.header(body.msg_type(), seq, self.clock.now());
        m.raw_fields(body.body_fields());
        let raw = m.finish();
        let kept = self.store.take_out().and_then(|_| self.store.keep(seq, &raw));
        if let Err(e) = kept {
            self.fail_store(&e);
            return Err(End::Stop);
        }
        self.write(link, &raw).await
    }

    async fn reject(&mut self, link: &mut Link, msg: &Message, reason: u64, text: &str) -> Result<(), End> {
        metrics::counter!("ts_fix_rejects_sent_total").increment(1);
        let mut m = MessageBuilder::new("3");
        m.int(tags::REF_SEQ_NUM, msg.seq_num().unwrap_or(0));
        m.field(tags::REF_MSG_TYPE, msg.msg_type());
        m.int(tags::SESSION_REJECT_REASON, reason);
        m.field(tags::TEXT, text);
        self.send_admin(link, &m).await
    }

    fn advance_in(&mut self) -> Result<(), End> {
        let next = self.store.next_in() + 1;
        if let Err(e) = self.store.set_next_in(next) {
            self.fail_store(&e);
            return Err(End::Stop);
        }
        self.info.send_modify(|i| i.next_target_seq = next);
        Ok(())
    }

    /// Handles one message from the counterparty; `Some` ends the connection.
    async fn incoming(&mut self, link: &mut Link, msg: Message) -> Option<End> {
        self.log.write(self.clock.now(), Direction::In, msg.raw());
        self.info.send_modify(|i| i.messages_in += 1);
        self.incoming_checked(link, msg).await.err()
    }

    async fn incoming_checked(&mut self, link: &mut Link, msg: Message) -> Result<(), End> {
        let kind = msg.msg_type().to_vec();
        let comp_ok = msg.get(tags::SENDER_COMP_ID) == Some(self.config.target_comp_id.as_bytes())
            && msg.get(tags::TARGET_COMP_ID) == Some(self.config.sender_comp_id.as_bytes());
        if !comp_ok {
            self.reject(link, &msg, reject_reason::COMP_ID_PROBLEM, "CompID problem").await?;
            self.logout(link, "CompID problem").await?;
            return Err(End::Closed("the counterparty sent wrong CompIDs".into()));
        }
        let Some(seq) = msg.seq_num() else {
            let text = "MsgSeqNum(34) missing or not a number";
            self.logout(link, text).await?;
            return Err(End::Closed(text.into()));
        };
        if msg.get(tags::SENDING_TIME).is_none() {
            self.reject(link, &msg, reject_reason::REQUIRED_TAG_MISSING, "SendingTime(52) missing").await?;
            return if seq == self.store.next_in() { self.advance_in() } else { Ok(()) };
        }
        if !link.logged_on && kind != msg_type::LOGON && link.logout_sent.is_none() {
            if kind == msg_type::LOGOUT {
                let text = msg.get_str(tags::TEXT).unwrap_or("no reason given").to_string();
                return Err(End::LoggedOut(format!("logon refused: {text}")));
            }
            self.logout(link, "the first message must be a Logon").await?;
            return Err(End::Closed("the counterparty did not answer our Logon with a Logon".into()));
        }
        if kind == msg_type::LOGON {
            return self.on_logon(link, &msg, seq).await;
        }
        if kind == msg_type::SEQUENCE_RESET && !msg.get_bool(tags::GAP_FILL_FLAG) {
            // Reset mode ignores MsgSeqNum: the counterparty says where its numbering now stands.
            return self.on_sequence_reset(link, &msg).await;
        }
        let expected = self.store.next_in();
        if seq > expected {
            if kind == msg_type::LOGOUT {
                return self.on_logout(link, &msg).await;
            }
            if kind == msg_type::RESEND_REQUEST {
                // Answered at once even ahead of its turn: when both sides have gaps, each waiting for the other
                // to go first would stall the session. Its own number is covered by our resend request below.
                self.on_resend_request(link, &msg).await?;
            }
            // One request at a time: it asks for everything from `expected` on, this message included.
            if link.resend_until.is_none() {
                self.resend_request(link, expected).await?;
            }
            link.resend_until = Some(link.resend_until.map_or(seq, |u| u.max(seq)));
            return Ok(());
        }
        if seq < expected {
            if msg.get_bool(tags::POSS_DUP_FLAG) {
                // Already processed: a resend of something we have.
                return Ok(());
            }
            let text = format!("MsgSeqNum too low, expecting {expected} but received {seq}");
            self.logout(link, &text).await?;
            return Err(End::Closed(text));
        }
        if msg.get_bool(tags::POSS_DUP_FLAG)
            && msg.get(tags::ORIG_SENDING_TIME).is_none()
            && kind != msg_type::SEQUENCE_RESET
        {
            self.reject(link, &msg, reject_reason::REQUIRED_TAG_MISSING, "OrigSendingTime(122) missing").await?;
            return self.advance_in();
        }
        if link.resend_until.is_some_and(|until| seq >= until) {
            // The resend reached the message that revealed the gap: caught up.
            link.resend_until = None;
        }
        match kind.as_slice() {
            msg_type::SEQUENCE_RESET => return self.on_sequence_reset(link, &msg).await,
            msg_type::HEARTBEAT => {
                if let (Some((id, _)), Some(got)) = (&link.test_request, msg.get(tags::TEST_REQ_ID)) {
                    if id.as_bytes() == got {
                        link.test_request = None;
                    }
                }
            }
            msg_type::TEST_REQUEST => {
                let mut m = MessageBuilder::new("0");
                if let Some(id) = msg.get(tags::TEST_REQ_ID) {
                    m.field(tags::TEST_REQ_ID, id);
                }
                self.advance_in()?;
                return self.send_admin(link, &m).await;
            }
            msg_type::RESEND_REQUEST => {
                self.advance_in()?;
                return self.on_resend_request(link, &msg).await;
            }
            msg_type::REJECT => {
                let ref_seq = msg.get_u64(tags::REF_SEQ_NUM).unwrap_or(0);
                let reason = msg.get_str(tags::TEXT).unwrap_or("rejected by the counterparty").to_string();
                let original = self
                    .store
                    .sent_between(ref_seq, ref_seq)
                    .ok()
                    .and_then(|m| m.into_iter().next())
                    .and_then(|(_, raw)| Message::parse(&raw).ok());
                metrics::counter!("ts_fix_rejects_received_total").increment(1);
                self.emit(SessionEvent::Rejected { ref_seq, reason, original });
            }
            msg_type::LOGOUT => {
                self.advance_in()?;
                return self.on_logout(link, &msg).await;
            }
            _ => {
                self.emit(SessionEvent::App(msg));
            }
        }
        self.advance_in()
    }

    async fn on_logon(&mut self, link: &mut Link, msg: &Message, seq: u64) -> Result<(), End> {
        if link.logged_on {
            self.reject(link, msg, reject_reason::OTHER, "already logged on").await?;
            return Ok(());
        }
        if msg.get_bool(tags::RESET_SEQ_NUM_FLAG) && !self.config.reset_on_logon {
            // The counterparty reset: its numbering starts again at 1.
            if let Err(e) = self.store.set_next_in(1) {
                self.fail_store(&e);
                return Err(End::Stop);
            }
        }
        let expected = self.store.next_in();
        if seq < expected && !msg.get_bool(tags::RESET_SEQ_NUM_FLAG) {
            let text = format!("MsgSeqNum too low, expecting {expected} but received {seq}");
            self.logout(link, &text).await?;
            return Err(End::Closed(text));
        }
        link.logged_on = true;
        link.last_received = Instant::now();
        if seq > expected {
            // Messages were sent while we were away: ask for them before anything else.
            self.resend_request(link, expected).await?;
            link.resend_until = Some(seq);
        } else {
            self.advance_in()?;
        }
        self.logged_on.store(true, Ordering::Release);
        self.set_status(SessionStatus::LoggedOn, "logged on");
        self.event("logged on");
        tracing::info!(session = %self.name(), next_out = self.store.next_out(), next_in = self.store.next_in(), "FIX session logged on");
        self.emit(SessionEvent::LoggedOn);
        Ok(())
    }

    async fn on_logout(&mut self, link: &mut Link, msg: &Message) -> Result<(), End> {
        let text = msg.get_str(tags::TEXT).unwrap_or("").to_string();
        if link.logout_sent.is_none() {
            let mut m = MessageBuilder::new("5");
            m.field(tags::TEXT, "logout acknowledged");
            self.send_admin(link, &m).await?;
        }
        let reason = if text.is_empty() { "logged out".to_string() } else { format!("logged out: {text}") };
        Err(if self.stopping { End::Stop } else { End::LoggedOut(reason) })
    }

    async fn on_sequence_reset(&mut self, link: &mut Link, msg: &Message) -> Result<(), End> {
        let expected = self.store.next_in();
        let Some(new) = msg.get_u64(tags::NEW_SEQ_NO) else {
            self.reject(link, msg, reject_reason::REQUIRED_TAG_MISSING, "NewSeqNo(36) missing").await?;
            return Ok(());
        };
        if new < expected {
            let text = format!("NewSeqNo {new} is below the expected {expected}");
            self.reject(link, msg, reject_reason::VALUE_INCORRECT, &text).await?;
            return Ok(());
        }
        if let Err(e) = self.store.set_next_in(new) {
            self.fail_store(&e);
            return Err(End::Stop);
        }
        if link.resend_until.is_some_and(|until| new > until) {
            link.resend_until = None;
        }
        self.info.send_modify(|i| i.next_target_seq = new);
        Ok(())
    }

    async fn resend_request(&mut self, link: &mut Link, from: u64) -> Result<(), End> {
        metrics::counter!("ts_fix_resend_requests_sent_total").increment(1);
        self.event(&format!("gap: asking for a resend from {from}"));
        let mut m = MessageBuilder::new("2");
        m.int(tags::BEGIN_SEQ_NO, from).int(tags::END_SEQ_NO, 0);
        self.send_admin(link, &m).await
    }

    /// Resends our application messages in the range with PossDupFlag and their original SendingTime; session
    /// messages and numbers we do not have become SequenceReset-GapFill.
    async fn on_resend_request(&mut self, link: &mut Link, msg: &Message) -> Result<(), End> {
        let last = self.store.next_out().saturating_sub(1);
        let begin = msg.get_u64(tags::BEGIN_SEQ_NO).unwrap_or(1).max(1);
        let end = match msg.get_u64(tags::END_SEQ_NO) {
            None | Some(0) => last,
            Some(e) => e.min(last),
        };
        metrics::counter!("ts_fix_resend_requests_received_total").increment(1);
        self.event(&format!("resend requested: {begin} to {end}"));
        let kept = match self.store.sent_between(begin, end) {
            Ok(kept) => kept,
            Err(e) => {
                // Unreadable: everything in the range is gap-filled (the status requests recover the orders).
                tracing::error!(session = %self.name(), error = %e, "cannot read the FIX message store for a resend");
                Vec::new()
            }
        };
        let mut gap_from = begin;
        let now = self.clock.now();
        for (seq, raw) in kept {
            if seq > gap_from {
                self.gap_fill(link, gap_from, seq).await?;
            }
            if let Ok(original) = Message::parse(&raw) {
                let mut m = self.header(original.msg_type(), seq, now);
                m.field(tags::POSS_DUP_FLAG, "Y");
                if let Some(orig) = original.get(tags::SENDING_TIME) {
                    m.field(tags::ORIG_SENDING_TIME, orig);
                }
                for (tag, value) in original.fields() {
                    if !matches!(tag, 8 | 9 | 10 | 34 | 35 | 43 | 49 | 52 | 56 | 97 | 122) {
                        m.field(tag, value);
                    }
                }
                let raw = m.finish();
                self.write(link, &raw).await?;
                gap_from = seq + 1;
            }
        }
        if gap_from <= end {
            self.gap_fill(link, gap_from, end + 1).await?;
        }
        Ok(())
    }

    async fn gap_fill(&mut self, link: &mut Link, from: u64, to: u64) -> Result<(), End> {
        let mut m = self.header(b"4", from, self.clock.now());
        m.field(tags::POSS_DUP_FLAG, "Y").field(tags::GAP_FILL_FLAG, "Y").int(tags::NEW_SEQ_NO, to);
        let raw = m.finish();
        self.write(link, &raw).await
    }
}
