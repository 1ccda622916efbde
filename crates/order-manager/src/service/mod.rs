//! The Order Manager service: one lock over the journaled state, split by job:
//!
//! - [`commands`]: submit, route, confirm, cancel, refused requests;
//! - [`broker_events`]: what the broker reports, and cancels the Order Manager sends on its own;
//! - [`supervision`]: limits, the kill switch, the daily loss limit, trading sessions, alerts;
//! - [`reconcile`]: our open orders against the broker's working orders;
//! - [`queries`]: reads, none of which walks every order while holding the lock.
//!
//! Every change goes through [`OrderManager::append`] (or its pre-encoded twin): journal first, then
//! [`OmsState::apply`], then subscribers.

mod broker_events;
mod commands;
mod queries;
mod reconcile;
mod supervision;

pub use commands::{Modify, Routed, SubmitOutcome};
pub use queries::{AccountPositions, OrderFilter, PositionsView, RecoveryReport, RiskStatus};

use crate::record::{Entry, Record};
use crate::snapshot;
use crate::state::{KillSwitchState, OmsState};
use chrono::{DateTime, Utc};
use clock::Clock;
use domain::broker::{Broker, BrokerEvent};
use domain::calendar::TradingCalendar;
use domain::order::{Order, OrderId, ValidationError};
use domain::risk::{RiskEngine, RiskRejection};
use domain::{AccountId, Instruments, Money, Position, Symbol};
use journal::{Journal, JournalError, Sealed};
use parking_lot::{Mutex, MutexGuard};
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::sync::{broadcast, mpsc, watch};

/// Who is asking: the account orders are booked to (and rate-limited per) and the request's correlation id.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub correlation_id: Option<String>,
}

impl Actor {
    pub fn new(name: impl Into<String>) -> Self {
        Actor { name: name.into(), correlation_id: None }
    }

    pub fn with_correlation(name: impl Into<String>, correlation_id: Option<String>) -> Self {
        Actor { name: name.into(), correlation_id }
    }

    /// The account this actor's orders are booked to: its name.
    pub fn account(&self) -> AccountId {
        AccountId::new(&self.name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OmsError {
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("rejected by risk: {}", .rejection.message)]
    Risk { order: Box<Order>, rejection: RiskRejection },
    #[error("order {0} not found")]
    NotFound(OrderId),
    #[error("{0}")]
    Conflict(String),
    /// A `client_order_id` already used for an order with different terms.
    #[error("client_order_id {client_order_id:?} was already used for order {} with a different {field}; send a new client_order_id for a new order", .original.id)]
    ReusedClientOrderId { client_order_id: String, field: &'static str, original: Box<Order> },
    #[error("{0}")]
    Unavailable(String),
}

impl From<JournalError> for OmsError {
    fn from(e: JournalError) -> Self {
        OmsError::Unavailable(format!("journal unavailable: {e}"))
    }
}

/// What clients may want to hear about (the WebSocket channels).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OmsUpdate {
    Order(Box<Order>),
    Fill {
        order_id: OrderId,
        symbol: Symbol,
        fill: domain::Fill,
    },
    Position(Position),
    KillSwitch(KillSwitchState),
    LossWarning {
        daily_pnl: Money,
        limit: Money,
    },
    /// See [`OrderManager::alert`].
    Alert {
        order_id: Option<OrderId>,
        kind: String,
        message: String,
    },
}

pub(crate) fn encode(record: &Record) -> Result<Vec<u8>, OmsError> {
    domain::price::with_exact_strings(|| serde_json::to_vec(record))
        .map_err(|e| OmsError::Unavailable(format!("cannot encode record: {e}")))
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError { field, message: message.into() }
}

/// How soon an appended record must reach the disk.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Wake the journal writer now.
    Now,
    /// The caller waits for durability itself shortly, which wakes the writer then (saves a futex wake).
    Lazy,
}

/// What the one lock guards: the journaled state and the live-only state beside it.
struct Desk {
    /// Changed only by applying journal records.
    state: OmsState,
    /// Per-account order-rate windows: live only, not journaled (a restart starts them empty).
    risk: RiskEngine,
    /// When the next session date begins; derived, not journaled (saves a time-zone conversion per order).
    session_rolls_at: Option<DateTime<Utc>>,
}

struct Inner {
    desk: Mutex<Desk>,
    journal: Journal,
    broker: OnceLock<Arc<dyn Broker>>,
    instruments: Instruments,
    calendar: TradingCalendar,
    clock: Arc<dyn Clock>,
    updates: broadcast::Sender<OmsUpdate>,
    checkpoints: std::sync::mpsc::Sender<Checkpoint>,
    snapshot_done: watch::Sender<u64>,
}

/// How the Order Manager keeps its journal.
#[derive(Debug, Clone)]
pub struct OmsOptions {
    /// A journal segment is sealed (and a snapshot written) each time the active one reaches this size.
    pub segment_bytes: u64,
}

impl Default for OmsOptions {
    fn default() -> Self {
        OmsOptions { segment_bytes: journal::Options::default().segment_bytes }
    }
}

enum Checkpoint {
    Sealed(Sealed),
    Stop,
}

/// The snapshot writer: one checkpoint at a time, the latest sealed segment first (several sealed while one was
/// written make one more snapshot, not several).
fn spawn_checkpointer(
    rx: std::sync::mpsc::Receiver<Checkpoint>,
    journal: Journal,
    instruments: Instruments,
    dir: std::path::PathBuf,
    done: watch::Sender<u64>,
) -> Result<(), OmsError> {
    let run = move || {
        while let Ok(Checkpoint::Sealed(first)) = rx.recv() {
            let mut target = first.last;
            for more in rx.try_iter() {
                match more {
                    Checkpoint::Sealed(s) => target = target.max(s.last),
                    Checkpoint::Stop => return,
                }
            }
            let started = std::time::Instant::now();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                snapshot::checkpoint(&dir, &journal, &instruments, target)
            }));
            match outcome {
                Ok(Ok(covered)) => {
                    metrics::counter!("ts_snapshots_total").increment(1);
                    metrics::histogram!("ts_snapshot_seconds").record(started.elapsed().as_secs_f64());
                    tracing::info!(records = covered, seconds = started.elapsed().as_secs_f64(), "snapshot written");
                    if let Err(e) = journal.archive_through(covered) {
                        tracing::error!(error = %e, "could not archive journal segments");
                    }
                    done.send_replace(covered);
                }
                Ok(Err(e)) => {
                    metrics::counter!("ts_snapshot_failures_total").increment(1);
                    tracing::error!(error = %e, "snapshot failed; the journal keeps every record, restarts replay more");
                }
                Err(_) => {
                    metrics::counter!("ts_snapshot_failures_total").increment(1);
                    tracing::error!("the snapshot writer panicked; it carries on with the next segment");
                }
            }
        }
    };
    std::thread::Builder::new()
        .name("oms-snapshots".into())
        .spawn(run)
        .map(|_| ())
        .map_err(|e| OmsError::Unavailable(format!("cannot start the snapshot writer: {e}")))
}

#[derive(Clone)]
pub struct OrderManager {
    inner: Arc<Inner>,
}

impl OrderManager {
    /// Opens the journal at `path`, replays it, and returns an Order Manager without a broker yet: hand
    /// [`OrderManager::open_orders`] to the broker adapter, then [`OrderManager::attach_broker`].
    pub fn recover(
        path: &Path,
        instruments: Instruments,
        calendar: TradingCalendar,
        clock: Arc<dyn Clock>,
    ) -> Result<(OrderManager, RecoveryReport), OmsError> {
        Self::recover_with(path, instruments, calendar, clock, OmsOptions::default())
    }

    /// [`OrderManager::recover`] with options. Recovery starts from the latest valid snapshot and decodes only the
    /// records after it; a background thread writes a new snapshot each time the journal seals a segment.
    pub fn recover_with(
        path: &Path,
        instruments: Instruments,
        calendar: TradingCalendar,
        clock: Arc<dyn Clock>,
        options: OmsOptions,
    ) -> Result<(OrderManager, RecoveryReport), OmsError> {
        let snapshots = snapshot::dir_for(path);
        let mut state = snapshot::load_latest(&snapshots)
            .map_err(|e| OmsError::Unavailable(format!("cannot read snapshots: {e}")))?
            .unwrap_or_else(OmsState::new);
        let from_snapshot = state.applied();
        let (checkpoints, to_checkpointer) = std::sync::mpsc::channel::<Checkpoint>();
        let told = checkpoints.clone();
        let journal_options = journal::Options {
            segment_bytes: options.segment_bytes,
            replay_after: from_snapshot,
            on_seal: Some(Arc::new(move |s: Sealed| {
                let _ = told.send(Checkpoint::Sealed(s));
            })),
        };
        let (journal, recovery) = Journal::open_with(path, journal_options)?;
        let mut undecodable = 0u64;
        for bytes in &recovery.records {
            match serde_json::from_slice::<Record>(bytes) {
                Ok(record) => {
                    state.apply(&record, &instruments);
                }
                Err(e) => {
                    // Checksummed but not understood: written by another version. Skipping is the only option that
                    // keeps the server up; the count is reported and logged loudly.
                    undecodable += 1;
                    state.skip_undecodable();
                    tracing::error!(record = state.applied(), error = %e, "journal record could not be decoded; skipped");
                }
            }
        }
        let report = RecoveryReport {
            records: recovery.total,
            snapshot_records: from_snapshot,
            replayed_records: recovery.records.len() as u64,
            undecodable_records: undecodable,
            truncated_bytes: recovery.truncated_bytes as u64,
            orders: state.order_count(),
            open_orders: state.open_count(),
            kill_switch_active: state.kill_switch().active,
        };
        drop(recovery);
        // Segments the snapshot covers go to the archive; segments sealed after it (a stop before their snapshot
        // was written) get one now, in the background.
        journal.archive_through(from_snapshot)?;
        if let Some(pending) = journal.segments().iter().rev().find(|(s, _)| s.last > from_snapshot) {
            let _ = checkpoints.send(Checkpoint::Sealed(pending.0));
        }
        let (snapshot_done, _) = watch::channel(from_snapshot);
        spawn_checkpointer(to_checkpointer, journal.clone(), instruments.clone(), snapshots, snapshot_done.clone())?;
        let oms = Self::assemble(state, journal, (instruments, calendar, clock), checkpoints, snapshot_done);
        metrics::gauge!("ts_kill_switch_active").set(if report.kill_switch_active { 1.0 } else { 0.0 });
        Ok((oms, report))
    }

    /// An Order Manager journaling into memory ([`Journal::in_memory`]): the same validation, risk, records and
    /// state as live, for a backtest. No snapshot writer; attach the venue with [`OrderManager::attach_broker_inline`].
    pub fn in_memory(instruments: Instruments, calendar: TradingCalendar, clock: Arc<dyn Clock>) -> OrderManager {
        // Nobody writes snapshots of a journal that dies with the process: the checkpoint channel has no reader.
        let (checkpoints, _) = std::sync::mpsc::channel::<Checkpoint>();
        let (snapshot_done, _) = watch::channel(0);
        let market = (instruments, calendar, clock);
        Self::assemble(OmsState::new(), Journal::in_memory(), market, checkpoints, snapshot_done)
    }

    fn assemble(
        state: OmsState,
        journal: Journal,
        (instruments, calendar, clock): (Instruments, TradingCalendar, Arc<dyn Clock>),
        checkpoints: std::sync::mpsc::Sender<Checkpoint>,
        snapshot_done: watch::Sender<u64>,
    ) -> OrderManager {
        let (updates, _) = broadcast::channel(4096);
        let desk = Desk { state, risk: RiskEngine::default(), session_rolls_at: None };
        OrderManager {
            inner: Arc::new(Inner {
                desk: Mutex::new(desk),
                journal,
                broker: OnceLock::new(),
                instruments,
                calendar,
                clock,
                updates,
                checkpoints,
                snapshot_done,
            }),
        }
    }

    /// Connects a broker whose events the caller delivers itself through [`OrderManager::on_broker_events`] (a
    /// backtest's simulated venue), and records the start. Needs no runtime.
    pub fn attach_broker_inline(&self, broker: Arc<dyn Broker>) -> Result<(), OmsError> {
        if self.inner.broker.set(broker).is_err() {
            return Err(OmsError::Conflict("a broker is already attached".into()));
        }
        let mut desk = self.lock();
        self.reconcile_locked(&mut desk)?;
        let started = Entry::Started { recovered_records: 0, truncated_bytes: 0 };
        self.append(&mut desk, &Actor::new("system"), started)?;
        Ok(())
    }

    /// The number of journal records the latest snapshot covers (0: none yet); changes when one is written.
    pub fn snapshots(&self) -> watch::Receiver<u64> {
        self.inner.snapshot_done.subscribe()
    }

    /// Connects the broker, starts consuming its events, reconciles, and records the start in the journal.
    pub async fn attach_broker(
        &self,
        broker: Arc<dyn Broker>,
        events: mpsc::UnboundedReceiver<BrokerEvent>,
        report: &RecoveryReport,
    ) -> Result<(), OmsError> {
        if self.inner.broker.set(broker).is_err() {
            return Err(OmsError::Conflict("a broker is already attached".into()));
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut events = events;
            let mut batch = Vec::with_capacity(256);
            // Draining whatever is queued in one go takes the state lock once per batch instead of once per event.
            while events.recv_many(&mut batch, 256).await > 0 {
                this.on_broker_events(batch.drain(..));
            }
            tracing::warn!("broker event stream ended");
        });
        let seq = {
            let mut desk = self.lock();
            self.reconcile_locked(&mut desk)?;
            let started = Entry::Started { recovered_records: report.records, truncated_bytes: report.truncated_bytes };
            self.append(&mut desk, &Actor::new("system"), started)?
        };
        self.inner.journal.wait_durable(seq).await?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Desk> {
        self.inner.desk.lock()
    }

    fn broker(&self) -> Result<&Arc<dyn Broker>, OmsError> {
        self.inner.broker.get().ok_or_else(|| OmsError::Unavailable("no broker attached".into()))
    }

    pub fn instruments(&self) -> &Instruments {
        &self.inner.instruments
    }

    pub fn journal(&self) -> &Journal {
        &self.inner.journal
    }

    pub fn subscribe(&self) -> broadcast::Receiver<OmsUpdate> {
        self.inner.updates.subscribe()
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    fn publish(&self, update: OmsUpdate) {
        let _ = self.inner.updates.send(update);
    }

    /// Records `entry` on behalf of `actor`: appended to the journal, then applied. A record that cannot be
    /// journaled never changes state. Returns the journal sequence to wait for.
    fn append(&self, desk: &mut Desk, actor: &Actor, entry: Entry) -> Result<u64, OmsError> {
        self.append_with(desk, actor, entry, Durability::Now)
    }

    fn append_with(&self, desk: &mut Desk, actor: &Actor, entry: Entry, sync: Durability) -> Result<u64, OmsError> {
        let record =
            Record { ts: self.now(), actor: actor.name.clone(), correlation_id: actor.correlation_id.clone(), entry };
        let bytes = encode(&record)?;
        self.append_encoded(desk, record, &bytes, sync)
    }

    /// The one append-apply step, for a record already encoded (outside the lock, where it does not depend on the
    /// state).
    fn append_encoded(&self, desk: &mut Desk, record: Record, bytes: &[u8], sync: Durability) -> Result<u64, OmsError> {
        let journal = &self.inner.journal;
        let seq = match sync {
            Durability::Now => journal.append(bytes)?,
            Durability::Lazy => journal.append_lazy(bytes)?,
        };
        let st = &mut desk.state;
        let fx = st.apply(&record, &self.inner.instruments);
        debug_assert_eq!(st.applied(), seq, "journal and state agree on the record count");
        if let Some(msg) = &fx.illegal {
            metrics::counter!("ts_illegal_transitions_total").increment(1);
            tracing::error!(error = %msg, "refused an illegal order transition");
        }
        if fx.duplicate_fill {
            metrics::counter!("ts_duplicate_fills_total").increment(1);
            tracing::warn!(order_id = ?record.entry.order_id(), "duplicate fill ignored");
        }
        if let (Some(id), true) = (fx.order_changed, self.inner.updates.receiver_count() > 0) {
            if let Some(o) = st.order(id) {
                self.publish(OmsUpdate::Order(Box::new(o.clone())));
                if let (true, Some(fill)) = (fx.fill, o.fills.last()) {
                    let (symbol, fill) = (o.symbol, fill.clone());
                    let position = st.positions().get(&symbol).cloned();
                    self.publish(OmsUpdate::Fill { order_id: id, symbol, fill });
                    if let Some(p) = position {
                        self.publish(OmsUpdate::Position(p));
                    }
                }
            }
        }
        Ok(seq)
    }

    /// Makes routed decisions durable without waiting for them (a caller that never calls `confirm`).
    pub fn flush_soon(&self) {
        self.inner.journal.flush_soon();
    }

    /// Waits until every record journaled so far is durable (and so visible to [`OrderManager::audit`]).
    pub async fn sync_journal(&self) -> Result<(), OmsError> {
        let seq = self.inner.journal.len();
        self.inner.journal.wait_durable(seq).await?;
        Ok(())
    }

    /// `None` when healthy, else what is wrong.
    pub fn journal_failure(&self) -> Option<String> {
        self.inner.journal.failure()
    }

    /// Flushes and closes the journal (graceful shutdown) and stops the snapshot writer.
    pub fn shutdown(&self) {
        let _ = self.inner.checkpoints.send(Checkpoint::Stop);
        self.inner.journal.close();
    }
}

#[cfg(test)]
mod send_check {
    use super::*;
    use domain::order::OrderRequest;
    fn is_send<T: Send>(_: &T) {}
    #[allow(dead_code)]
    fn futures_are_send(oms: &OrderManager, req: OrderRequest, a: &Actor) {
        is_send(&oms.submit(req, a));
        is_send(&oms.cancel(1, a));
        is_send(&oms.activate_kill_switch(a, "", true, false));
    }
}
