use crate::record::{request_summary, truncated, AuditEntry, Entry, Record, SUMMARY_MESSAGE_CHARS};
use crate::state::{KillSwitchState, OmsState};
use chrono::{DateTime, Utc};
use domain::broker::{Broker, BrokerEvent};
use domain::calendar::TradingCalendar;
use domain::order::{
    validate, Order, OrderEvent, OrderId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce, ValidationError,
};
use domain::risk::{flatten_side, loss_level, LossLevel, RiskContext, RiskLimits, RiskRejection, TradingState};
use domain::{Instruments, Money, Position, Price};
use journal::{Journal, JournalError};
use parking_lot::Mutex;
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::sync::{broadcast, mpsc};

/// Time as the Order Manager sees it: the wall clock live and in paper trading, the replayed clock in backtests.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

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

#[derive(Debug)]
pub enum SubmitOutcome {
    Created(Order),
    /// The same `client_order_id` was seen before: this is the original order.
    Existing(Order),
}

impl SubmitOutcome {
    pub fn order(&self) -> &Order {
        match self {
            SubmitOutcome::Created(o) | SubmitOutcome::Existing(o) => o,
        }
    }
}

/// What clients may want to hear about (the WebSocket channels of the next issue).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OmsUpdate {
    Order(Box<Order>),
    Fill {
        order_id: OrderId,
        symbol: String,
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

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<Vec<OrderStatus>>,
    pub symbol: Option<String>,
    pub side: Option<Side>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PositionsView {
    pub positions: Vec<Position>,
    pub realized_today: Money,
    pub unrealized: Money,
    pub daily_pnl: Money,
    pub exposure: Money,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskStatus {
    pub kill_switch: KillSwitchState,
    pub trading_state: TradingState,
    pub market_open: bool,
    pub daily_pnl: Money,
    pub realized_today: Money,
    pub unrealized: Money,
    pub daily_loss_limit: Money,
    pub loss_level: LossLevel,
    pub exposure: Money,
    pub open_orders: usize,
    pub session_date: Option<chrono::NaiveDate>,
    pub broker_can_route: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    pub records: u64,
    pub undecodable_records: u64,
    pub truncated_bytes: u64,
    pub orders: usize,
    pub open_orders: usize,
    pub kill_switch_active: bool,
}

fn encode(record: &Record) -> Result<Vec<u8>, OmsError> {
    domain::price::with_exact_strings(|| serde_json::to_vec(record))
        .map_err(|e| OmsError::Unavailable(format!("cannot encode record: {e}")))
}

/// The `source` of the market orders the kill switch sends to flatten positions.
const FLATTEN_SOURCE: &str = "kill-switch-flatten";

enum Decision {
    Existing(Order),
    Refused(OmsError),
    Accepted(Order),
}

/// A decision taken and routed but maybe not yet durable; see [`OrderManager::route`].
pub struct Routed {
    seq: u64,
    decision: Decision,
}

impl Routed {
    /// The order as decided: created (and routed) or refused by validation or risk.
    pub fn outcome(&self) -> Result<&Order, &OmsError> {
        match &self.decision {
            Decision::Existing(o) | Decision::Accepted(o) => Ok(o),
            Decision::Refused(e) => Err(e),
        }
    }
}

struct Inner {
    state: Mutex<OmsState>,
    journal: Journal,
    broker: OnceLock<Arc<dyn Broker>>,
    instruments: Instruments,
    calendar: TradingCalendar,
    clock: Arc<dyn Clock>,
    updates: broadcast::Sender<OmsUpdate>,
}

#[derive(Clone)]
pub struct OrderManager {
    inner: Arc<Inner>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError { field, message: message.into() }
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
        let (journal, recovery) = Journal::open(path)?;
        let mut state = OmsState::new();
        let mut undecodable = 0u64;
        for (i, bytes) in recovery.records.iter().enumerate() {
            match serde_json::from_slice::<Record>(bytes) {
                Ok(record) => {
                    state.apply(&record, &instruments);
                    if let Some(id) = record.entry.order_id() {
                        state.audit_index.entry(id).or_default().push(i as u64);
                    }
                }
                Err(e) => {
                    // Checksummed but not understood: written by another version. Skipping is the only option that
                    // keeps the server up; the count is reported and logged loudly.
                    undecodable += 1;
                    tracing::error!(record = i + 1, error = %e, "journal record could not be decoded; skipped");
                }
            }
        }
        let report = RecoveryReport {
            records: recovery.records.len() as u64,
            undecodable_records: undecodable,
            truncated_bytes: recovery.truncated_bytes as u64,
            orders: state.orders.len(),
            open_orders: state.open.len(),
            kill_switch_active: state.kill_switch.active,
        };
        let (updates, _) = broadcast::channel(4096);
        let oms = OrderManager {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                journal,
                broker: OnceLock::new(),
                instruments,
                calendar,
                clock,
                updates,
            }),
        };
        metrics::gauge!("ts_kill_switch_active").set(if report.kill_switch_active { 1.0 } else { 0.0 });
        Ok((oms, report))
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
            let mut st = self.inner.state.lock();
            self.reconcile_locked(&mut st)?;
            let rec = self.record(
                "system",
                None,
                Entry::Started { recovered_records: report.records, truncated_bytes: report.truncated_bytes },
            );
            self.commit(&mut st, rec)?
        };
        self.inner.journal.wait_durable(seq).await?;
        Ok(())
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

    fn record(&self, actor: &str, correlation_id: Option<String>, entry: Entry) -> Record {
        Record { ts: self.now(), actor: actor.to_string(), correlation_id, entry }
    }

    /// Appends, then applies: a record that cannot be journaled never changes state.
    fn commit(&self, st: &mut OmsState, record: Record) -> Result<u64, OmsError> {
        self.commit_with(st, record, false)
    }

    /// `lazy`: the caller waits for durability itself shortly, which wakes the journal writer then.
    fn commit_with(&self, st: &mut OmsState, record: Record, lazy: bool) -> Result<u64, OmsError> {
        let bytes = encode(&record)?;
        self.commit_encoded(st, record, &bytes, lazy)
    }

    /// Commits a record already encoded (outside the lock, where the record does not depend on the state).
    fn commit_encoded(&self, st: &mut OmsState, record: Record, bytes: &[u8], lazy: bool) -> Result<u64, OmsError> {
        let seq = if lazy { self.inner.journal.append_lazy(bytes)? } else { self.inner.journal.append(bytes)? };
        if let Some(id) = record.entry.order_id() {
            st.audit_index.entry(id).or_default().push(seq - 1);
        }
        let fx = st.apply(&record, &self.inner.instruments);
        if let Some(msg) = &fx.illegal {
            metrics::counter!("ts_illegal_transitions_total").increment(1);
            tracing::error!(error = %msg, "refused an illegal order transition");
        }
        if fx.duplicate_fill {
            metrics::counter!("ts_duplicate_fills_total").increment(1);
            tracing::warn!(order_id = ?record.entry.order_id(), "duplicate fill ignored");
        }
        if let (Some(id), true) = (fx.order_changed, self.inner.updates.receiver_count() > 0) {
            if let Some(o) = st.orders.get(&id) {
                let _ = self.inner.updates.send(OmsUpdate::Order(Box::new(o.clone())));
                if let (true, Some(fill)) = (fx.fill, o.fills.last()) {
                    let (symbol, fill) = (o.symbol.clone(), fill.clone());
                    let position = st.positions.get(&symbol).cloned();
                    let _ = self.inner.updates.send(OmsUpdate::Fill { order_id: id, symbol, fill });
                    if let Some(p) = position {
                        let _ = self.inner.updates.send(OmsUpdate::Position(p));
                    }
                }
            }
        }
        Ok(seq)
    }

    /// Starts a new trading date when the clock has moved past the recorded one.
    fn roll_session_locked(&self, st: &mut OmsState, now: DateTime<Utc>) -> Result<(), OmsError> {
        if st.session_rolls_at.is_some_and(|t| now < t) {
            return Ok(());
        }
        let today = self.inner.calendar.session_date(now);
        if st.session_date != Some(today) {
            let rec = self.record("system", None, Entry::SessionStarted { date: today });
            self.commit(st, rec)?;
        }
        st.session_rolls_at = Some(self.inner.calendar.next_date_change(now));
        Ok(())
    }

    /// Validates, risk-checks, journals and routes one order. Returns once the decision is durable.
    pub async fn submit(&self, req: OrderRequest, actor: &Actor) -> Result<SubmitOutcome, OmsError> {
        let routed = self.route(req, actor)?;
        self.confirm(routed).await
    }

    /// The synchronous half of [`OrderManager::submit`]: decides, journals (not yet durably) and hands an accepted
    /// order to the broker, on the caller's thread. Strategies running inline in Data Capture use it so a trade
    /// becomes a routed order without a task hand-off; [`OrderManager::confirm`] then waits for the disk.
    ///
    /// Routing does not wait for the disk: the order reaches the broker in microseconds while the journal syncs.
    /// If the process dies before the sync, the caller was never acknowledged and reconciliation at the next
    /// start finds whatever the broker holds that the journal does not.
    pub fn route(&self, req: OrderRequest, actor: &Actor) -> Result<Routed, OmsError> {
        let broker = self.broker()?.clone();
        let (seq, decision) = self.decide(&req, actor, broker.as_ref())?;
        if let Decision::Accepted(order) = &decision {
            if let Err(e) = broker.submit(order) {
                self.apply_broker_event(
                    order.id,
                    OrderEvent::Rejected { code: "BROKER_UNAVAILABLE".into(), reason: e.to_string() },
                    "broker",
                );
            }
        }
        Ok(Routed { seq, decision })
    }

    /// Waits until a routed decision is durable and returns it. Whatever was decided is answered only then (a
    /// repeat may race its original to disk).
    pub async fn confirm(&self, routed: Routed) -> Result<SubmitOutcome, OmsError> {
        self.inner.journal.wait_durable(routed.seq).await?;
        match routed.decision {
            Decision::Existing(o) => Ok(SubmitOutcome::Existing(o)),
            Decision::Refused(e) => Err(e),
            Decision::Accepted(o) => {
                // The answer shows the order as it is now, fills included (a market order often filled while the
                // submit record synced): whatever it shows must be on disk too, so a crash cannot take back a fill
                // the caller was told about.
                let now = self.get(o.id).unwrap_or(o);
                self.inner.journal.wait_durable(self.inner.journal.len()).await?;
                Ok(SubmitOutcome::Created(now))
            }
        }
    }

    /// Makes routed decisions durable without waiting for them (a caller that never calls `confirm`).
    pub fn flush_soon(&self) {
        self.inner.journal.flush_soon();
    }

    /// The synchronous part of a submission, under the state lock: returns the journal sequence to wait for.
    fn decide(&self, req: &OrderRequest, actor: &Actor, broker: &dyn Broker) -> Result<(u64, Decision), OmsError> {
        let now = self.now();
        let mut guard = self.inner.state.lock();
        let st = &mut *guard;
        self.roll_session_locked(st, now)?;
        if let Some(coid) = &req.client_order_id {
            if let Some(id) = st.by_client_id.get(&(actor.name.clone(), coid.clone())) {
                let existing = st.orders.get(id).cloned().ok_or(OmsError::NotFound(*id))?;
                // Idempotency is for the same request sent again: different terms under the same key are refused,
                // never answered with the first order as if they had been accepted.
                let decision = match existing.differs_from(req) {
                    None => Decision::Existing(existing),
                    Some(field) => Decision::Refused(OmsError::ReusedClientOrderId {
                        client_order_id: coid.clone(),
                        field,
                        original: Box::new(existing),
                    }),
                };
                return Ok((self.inner.journal.len(), decision));
            }
        }
        let ins = self.inner.instruments.get(&req.symbol);
        let last = st.last_prices.get(&req.symbol).copied();
        let checked = match ins {
            None => Err(invalid("symbol", format!("unknown symbol {:?}", truncated(&req.symbol, 32)))),
            Some(ins) => validate(req, ins, last),
        };
        let ins = match (checked, ins) {
            (Ok(()), Some(ins)) => ins,
            (Err(e), _) => {
                let rec = self.record(
                    &actor.name,
                    actor.correlation_id.clone(),
                    Entry::OrderInvalid {
                        request: request_summary(&serde_json::to_value(req).unwrap_or_default()),
                        field: e.field.to_string(),
                        message: truncated(&e.message, SUMMARY_MESSAGE_CHARS),
                    },
                );
                let seq = self.commit(st, rec)?;
                metrics::counter!("ts_orders_total", "result" => "invalid").increment(1);
                return Ok((seq, Decision::Refused(OmsError::Invalid(e))));
            }
            (Ok(()), None) => return Err(OmsError::Invalid(invalid("symbol", "unknown symbol"))),
        };
        if !broker.connection().can_route() {
            return Err(OmsError::Unavailable("order routing to the broker is down; new orders are paused".into()));
        }
        let ctx = RiskContext {
            account: &actor.name,
            now,
            kill_switch_active: st.kill_switch.active,
            market_open: self.inner.calendar.is_open(now),
            last_price: last,
            net_position: st.positions.net_quantity(&req.symbol),
            open_same_side: st.open_same_side(&req.symbol, req.side),
            daily_pnl: st.positions.daily_pnl(),
        };
        let mut order = Order::new(st.next_id, &actor.name, req, now);
        match st.risk.check(req, ins, &st.limits, &ctx) {
            Err(rejection) => {
                let code = rejection.code().to_string();
                let _ =
                    order.apply(&OrderEvent::Rejected { code: code.clone(), reason: rejection.message.clone() }, now);
                let rec = self.record(
                    &actor.name,
                    actor.correlation_id.clone(),
                    Entry::OrderRejected {
                        order: order.clone(),
                        check: rejection.check,
                        code: code.clone(),
                        reason: rejection.message.clone(),
                    },
                );
                let seq = self.commit(st, rec)?;
                metrics::counter!("ts_orders_total", "result" => "rejected").increment(1);
                metrics::counter!("ts_risk_rejections_total", "check" => code).increment(1);
                Ok((seq, Decision::Refused(OmsError::Risk { order: Box::new(order), rejection })))
            }
            Ok(()) => {
                let rec = self.record(
                    &actor.name,
                    actor.correlation_id.clone(),
                    Entry::OrderSubmitted { order: order.clone() },
                );
                let seq = self.commit_with(st, rec, true)?;
                metrics::counter!("ts_orders_total", "result" => "accepted").increment(1);
                Ok((seq, Decision::Accepted(order)))
            }
        }
    }

    /// Records a request that never became an [`OrderRequest`] (malformed fields) in the audit trail, as a bounded
    /// summary: a flood of huge refused requests must not grow the journal that every restart reads.
    pub async fn record_invalid(
        &self,
        request: &serde_json::Value,
        field: &str,
        message: &str,
        actor: &Actor,
    ) -> Result<(), OmsError> {
        let entry = Entry::OrderInvalid {
            request: request_summary(request),
            field: truncated(field, 64),
            message: truncated(message, SUMMARY_MESSAGE_CHARS),
        };
        let seq = {
            let mut st = self.inner.state.lock();
            let rec = self.record(&actor.name, actor.correlation_id.clone(), entry);
            self.commit(&mut st, rec)?
        };
        metrics::counter!("ts_orders_total", "result" => "invalid").increment(1);
        self.inner.journal.wait_durable(seq).await?;
        Ok(())
    }

    pub async fn cancel(&self, id: OrderId, actor: &Actor) -> Result<Order, OmsError> {
        let broker = self.broker()?.clone();
        let seq = {
            let mut st = self.inner.state.lock();
            let order = st.orders.get(&id).ok_or(OmsError::NotFound(id))?;
            match order.status {
                OrderStatus::New | OrderStatus::PartiallyFilled => {}
                OrderStatus::PendingNew => {
                    return Err(OmsError::Conflict(format!(
                        "order {id} is not yet acknowledged by the broker; retry shortly"
                    )))
                }
                s => return Err(OmsError::Conflict(format!("order {id} is {s} and cannot be canceled"))),
            }
            let rec = self.record(
                &actor.name,
                actor.correlation_id.clone(),
                Entry::OrderEvent { order_id: id, event: OrderEvent::CancelRequested },
            );
            self.commit(&mut st, rec)?
        };
        self.inner.journal.wait_durable(seq).await?;
        if let Err(e) = broker.cancel(id) {
            self.apply_broker_event(id, OrderEvent::CancelRejected { reason: e.to_string() }, "broker");
        }
        self.get(id).ok_or(OmsError::NotFound(id))
    }

    fn apply_broker_event(&self, order_id: OrderId, event: OrderEvent, actor: &str) {
        self.on_broker_event_as(BrokerEvent { order_id, event, ts: self.now() }, actor);
    }

    fn broker_record(ev: BrokerEvent, actor: &str) -> Record {
        Record {
            ts: ev.ts,
            actor: actor.to_string(),
            correlation_id: None,
            entry: Entry::OrderEvent { order_id: ev.order_id, event: ev.event },
        }
    }

    fn on_broker_events(&self, events: impl Iterator<Item = BrokerEvent>) {
        // Broker events do not depend on our state, so they are encoded before taking the lock.
        let encoded: Vec<(Record, Result<Vec<u8>, OmsError>)> = events
            .map(|ev| {
                let rec = Self::broker_record(ev, "broker");
                let bytes = encode(&rec);
                (rec, bytes)
            })
            .collect();
        let mut guard = self.inner.state.lock();
        for (rec, bytes) in encoded {
            match bytes {
                Ok(b) => self.on_broker_record_locked(&mut guard, rec, &b),
                Err(e) => tracing::error!(error = %e, "could not encode a broker event"),
            }
        }
    }

    fn on_broker_event_as(&self, ev: BrokerEvent, actor: &str) {
        let rec = Self::broker_record(ev, actor);
        match encode(&rec) {
            Ok(b) => self.on_broker_record_locked(&mut self.inner.state.lock(), rec, &b),
            Err(e) => tracing::error!(error = %e, "could not encode a broker event"),
        }
    }

    fn on_broker_record_locked(&self, st: &mut OmsState, rec: Record, bytes: &[u8]) {
        let Entry::OrderEvent { order_id, event } = &rec.entry else { return };
        let (order_id, kind) = (*order_id, event.name());
        let accepted = matches!(event, OrderEvent::Accepted { .. });
        let is_fill = matches!(event, OrderEvent::Filled(_));
        if let Err(e) = self.commit_encoded(st, rec, bytes, false) {
            tracing::error!(order_id, error = %e, "could not journal a broker event");
            return;
        }
        metrics::counter!("ts_order_events_total", "event" => kind).increment(1);
        // An order the broker acknowledged while the kill switch is on gets canceled right away, except the
        // switch's own flattening orders.
        let flattening = st.orders.get(&order_id).is_some_and(|o| o.source == FLATTEN_SOURCE);
        if accepted && st.kill_switch.active && st.kill_switch.cancel_open_orders && !flattening {
            self.request_cancel_locked(st, order_id, "kill-switch");
        }
        if is_fill {
            self.check_daily_loss_locked(st);
        }
    }

    fn request_cancel_locked(&self, st: &mut OmsState, id: OrderId, actor: &str) {
        let cancelable =
            st.orders.get(&id).is_some_and(|o| matches!(o.status, OrderStatus::New | OrderStatus::PartiallyFilled));
        if !cancelable {
            return;
        }
        let rec = self.record(actor, None, Entry::OrderEvent { order_id: id, event: OrderEvent::CancelRequested });
        if self.commit(st, rec).is_err() {
            return;
        }
        if let Some(b) = self.inner.broker.get() {
            if let Err(e) = b.cancel(id) {
                let rec = self.record(
                    "broker",
                    None,
                    Entry::OrderEvent { order_id: id, event: OrderEvent::CancelRejected { reason: e.to_string() } },
                );
                let _ = self.commit(st, rec);
            }
        }
    }

    /// Marks positions to a trade from the market and enforces the daily loss limit.
    pub fn on_market_trade(&self, symbol: &str, price: Price) {
        let now = self.now();
        let mut guard = self.inner.state.lock();
        let st = &mut *guard;
        if let Err(e) = self.roll_session_locked(st, now) {
            tracing::error!(error = %e, "could not start the new session");
        }
        st.last_prices.insert(symbol.to_string(), price);
        if st.positions.mark(symbol, price) {
            self.check_daily_loss_locked(st);
        }
    }

    fn check_daily_loss_locked(&self, st: &mut OmsState) {
        let pnl = st.positions.daily_pnl();
        metrics::gauge!("ts_daily_pnl_brl").set(pnl.to_f64());
        let limit = st.limits.daily_loss_limit;
        match loss_level(pnl, limit) {
            LossLevel::Breached if !st.kill_switch.active => {
                let reason = format!("automatic: daily P&L {pnl} reached the loss limit {limit}");
                tracing::warn!(%reason, "daily loss limit breached; activating the kill switch");
                if let Err(e) = self.activate_locked(st, &Actor::new("risk-engine"), &reason, true, false, true) {
                    tracing::error!(error = %e, "could not activate the kill switch automatically");
                }
            }
            LossLevel::Warning | LossLevel::Breached if !st.loss_warned => {
                let rec = self.record("risk-engine", None, Entry::LossWarning { daily_pnl: pnl, limit });
                if self.commit(st, rec).is_ok() {
                    tracing::warn!(daily_pnl = %pnl, %limit, "daily loss at 80% of the limit");
                    let _ = self.inner.updates.send(OmsUpdate::LossWarning { daily_pnl: pnl, limit });
                }
            }
            _ => {}
        }
    }

    /// Returns the journal sequence to wait for and the flatten orders to route once durable.
    fn activate_locked(
        &self,
        st: &mut OmsState,
        actor: &Actor,
        reason: &str,
        cancel_open_orders: bool,
        flatten: bool,
        automatic: bool,
    ) -> Result<(u64, Vec<Order>), OmsError> {
        let rec = self.record(
            &actor.name,
            actor.correlation_id.clone(),
            Entry::KillSwitch { active: true, reason: reason.to_string(), cancel_open_orders, flatten, automatic },
        );
        let mut seq = self.commit(st, rec)?;
        metrics::gauge!("ts_kill_switch_active").set(1.0);
        let _ = self.inner.updates.send(OmsUpdate::KillSwitch(st.kill_switch.clone()));
        if cancel_open_orders {
            let open: Vec<OrderId> = st.open.iter().copied().collect();
            for id in open {
                self.request_cancel_locked(st, id, "kill-switch");
            }
        }
        let mut flatten_orders = Vec::new();
        if flatten {
            let now = self.now();
            let positions: Vec<(String, i64)> = st.positions.iter().map(|p| (p.symbol.clone(), p.quantity)).collect();
            for (symbol, qty) in positions {
                let Some(side) = flatten_side(qty) else {
                    continue;
                };
                let req = OrderRequest {
                    symbol,
                    side,
                    order_type: OrderType::Market,
                    quantity: qty.abs(),
                    price: None,
                    stop_price: None,
                    time_in_force: TimeInForce::Ioc,
                    client_order_id: None,
                    position_type: domain::PositionType::Daytrade,
                    justification: Some(format!("kill switch flatten: {reason}")),
                    source: Some(FLATTEN_SOURCE.into()),
                };
                // Flattening only reduces exposure, which is exactly what the blocked checks protect; it bypasses them.
                let order = Order::new(st.next_id, &actor.name, &req, now);
                let rec = self.record(
                    &actor.name,
                    actor.correlation_id.clone(),
                    Entry::OrderSubmitted { order: order.clone() },
                );
                seq = self.commit(st, rec)?;
                flatten_orders.push(order);
            }
        }
        Ok((self.inner.journal.len().max(seq), flatten_orders))
    }

    pub async fn activate_kill_switch(
        &self,
        actor: &Actor,
        reason: &str,
        cancel_open_orders: bool,
        flatten: bool,
    ) -> Result<KillSwitchState, OmsError> {
        let (seq, flatten_orders) = {
            let mut st = self.inner.state.lock();
            self.activate_locked(&mut st, actor, reason, cancel_open_orders, flatten, false)?
        };
        self.inner.journal.wait_durable(seq).await?;
        let broker = self.broker()?.clone();
        for o in flatten_orders {
            if let Err(e) = broker.submit(&o) {
                self.apply_broker_event(
                    o.id,
                    OrderEvent::Rejected { code: "BROKER_UNAVAILABLE".into(), reason: e.to_string() },
                    "broker",
                );
            }
        }
        Ok(self.kill_switch())
    }

    pub async fn release_kill_switch(&self, actor: &Actor, reason: &str) -> Result<KillSwitchState, OmsError> {
        let seq = {
            let mut st = self.inner.state.lock();
            if !st.kill_switch.active {
                return Ok(st.kill_switch.clone());
            }
            let rec = self.record(
                &actor.name,
                actor.correlation_id.clone(),
                Entry::KillSwitch {
                    active: false,
                    reason: reason.to_string(),
                    cancel_open_orders: false,
                    flatten: false,
                    automatic: false,
                },
            );
            let seq = self.commit(&mut st, rec)?;
            let _ = self.inner.updates.send(OmsUpdate::KillSwitch(st.kill_switch.clone()));
            seq
        };
        metrics::gauge!("ts_kill_switch_active").set(0.0);
        self.inner.journal.wait_durable(seq).await?;
        Ok(self.kill_switch())
    }

    pub async fn set_limits(&self, limits: RiskLimits, reason: &str, actor: &Actor) -> Result<RiskLimits, OmsError> {
        self.update_limits(|l| *l = limits, reason, actor).await
    }

    /// Changes the limits by `change` applied to the current ones, read and written under the state lock, so two
    /// concurrent partial updates both land (neither overwrites the other with what it read before).
    pub async fn update_limits(
        &self,
        change: impl FnOnce(&mut RiskLimits),
        reason: &str,
        actor: &Actor,
    ) -> Result<RiskLimits, OmsError> {
        let (seq, limits) = {
            let mut st = self.inner.state.lock();
            let mut limits = st.limits.clone();
            change(&mut limits);
            if let Err((field, message)) = limits.validate() {
                return Err(OmsError::Invalid(ValidationError { field, message }));
            }
            for sym in limits.symbols.keys() {
                if self.inner.instruments.get(sym).is_none() {
                    return Err(OmsError::Invalid(invalid(
                        "symbols",
                        format!("unknown symbol {:?}", truncated(sym, 32)),
                    )));
                }
            }
            let rec = self.record(
                &actor.name,
                actor.correlation_id.clone(),
                Entry::LimitsChanged { limits: limits.clone(), reason: reason.to_string() },
            );
            (self.commit(&mut st, rec)?, limits)
        };
        self.inner.journal.wait_durable(seq).await?;
        Ok(limits)
    }

    fn reconcile_locked(&self, st: &mut OmsState) -> Result<(), OmsError> {
        let broker = self.broker()?.clone();
        let theirs: std::collections::HashMap<OrderId, _> =
            broker.working_orders().into_iter().map(|w| (w.order_id, w)).collect();
        let ours: Vec<(OrderId, Option<String>, i64, OrderStatus)> =
            st.open_orders().map(|o| (o.id, o.broker_order_id.clone(), o.filled_quantity, o.status)).collect();
        for (id, broker_id, filled, status) in &ours {
            // PENDING_NEW orders were handed to the broker as new submissions; their acknowledgement follows.
            if broker_id.is_none() || *status == OrderStatus::PendingNew {
                continue;
            }
            match theirs.get(id) {
                None => {
                    let rec = self.record(
                        "reconciler",
                        None,
                        Entry::Reconciled {
                            order_id: Some(*id),
                            finding: "open here but unknown to the broker".into(),
                            action: "marked canceled".into(),
                        },
                    );
                    self.commit(st, rec)?;
                    let rec = self.record(
                        "reconciler",
                        None,
                        Entry::OrderEvent {
                            order_id: *id,
                            event: OrderEvent::Canceled {
                                reason: "reconciliation: the broker has no such working order".into(),
                            },
                        },
                    );
                    self.commit(st, rec)?;
                }
                Some(w) if w.filled_quantity != *filled => {
                    let rec = self.record(
                        "reconciler",
                        None,
                        Entry::Reconciled {
                            order_id: Some(*id),
                            finding: format!("broker reports {} filled, we have {filled}", w.filled_quantity),
                            action: "flagged for review".into(),
                        },
                    );
                    self.commit(st, rec)?;
                }
                Some(_) => {}
            }
        }
        for (id, w) in &theirs {
            let known_open = st.orders.get(id).is_some_and(|o| o.status.is_open());
            if !known_open {
                let rec = self.record(
                    "reconciler",
                    None,
                    Entry::Reconciled {
                        order_id: Some(*id),
                        finding: format!("broker works order {} that is not open here", w.broker_order_id),
                        action: "cancel sent to the broker".into(),
                    },
                );
                self.commit(st, rec)?;
                let _ = broker.cancel(*id);
            }
        }
        Ok(())
    }

    // ---- queries ----

    pub fn get(&self, id: OrderId) -> Option<Order> {
        self.inner.state.lock().orders.get(&id).cloned()
    }

    /// Newest first.
    pub fn list(&self, f: &OrderFilter) -> (Vec<Order>, usize) {
        let st = self.inner.state.lock();
        let matches = |o: &&Order| {
            f.status.as_ref().is_none_or(|s| s.contains(&o.status))
                && f.symbol.as_ref().is_none_or(|s| &o.symbol == s)
                && f.side.is_none_or(|s| o.side == s)
                && f.from.is_none_or(|t| o.created_at >= t)
                && f.to.is_none_or(|t| o.created_at <= t)
        };
        let mut total = 0;
        let mut page = Vec::new();
        for o in st.orders.values().rev().filter(matches) {
            if total >= f.offset && page.len() < f.limit {
                page.push(o.clone());
            }
            total += 1;
        }
        (page, total)
    }

    pub fn open_orders(&self) -> Vec<Order> {
        self.inner.state.lock().open_orders().cloned().collect()
    }

    pub fn positions(&self) -> PositionsView {
        let st = self.inner.state.lock();
        PositionsView {
            positions: st.positions.iter().cloned().collect(),
            realized_today: st.positions.realized_today(),
            unrealized: st.positions.unrealized(),
            daily_pnl: st.positions.daily_pnl(),
            exposure: st.positions.exposure(),
        }
    }

    pub fn limits(&self) -> RiskLimits {
        self.inner.state.lock().limits.clone()
    }

    pub fn kill_switch(&self) -> KillSwitchState {
        self.inner.state.lock().kill_switch.clone()
    }

    pub fn last_price(&self, symbol: &str) -> Option<Price> {
        self.inner.state.lock().last_prices.get(symbol).copied()
    }

    pub fn risk_status(&self) -> RiskStatus {
        let broker_can_route = self.inner.broker.get().is_some_and(|b| b.connection().can_route());
        let now = self.now();
        let st = self.inner.state.lock();
        let daily_pnl = st.positions.daily_pnl();
        RiskStatus {
            kill_switch: st.kill_switch.clone(),
            trading_state: st.limits.trading_state,
            market_open: self.inner.calendar.is_open(now),
            daily_pnl,
            realized_today: st.positions.realized_today(),
            unrealized: st.positions.unrealized(),
            daily_loss_limit: st.limits.daily_loss_limit,
            loss_level: loss_level(daily_pnl, st.limits.daily_loss_limit),
            exposure: st.positions.exposure(),
            open_orders: st.open.len(),
            session_date: st.session_date,
            broker_can_route,
        }
    }

    pub fn order_counts(&self) -> std::collections::BTreeMap<OrderStatus, usize> {
        self.inner.state.lock().count_by_status()
    }

    pub fn broker_connection(&self) -> Option<domain::broker::BrokerConnection> {
        self.inner.broker.get().map(|b| b.connection())
    }

    /// The audit trail, oldest first: `offset`/`limit` over journal records, or one order's records.
    pub fn audit(
        &self,
        offset: u64,
        limit: usize,
        order_id: Option<OrderId>,
    ) -> Result<(Vec<AuditEntry>, u64), OmsError> {
        self.audit_page(offset, limit, order_id, false)
    }

    /// A page of the audit trail, newest or oldest first: `offset`/`limit` over journal records, or one order's
    /// records (read through the index by order, not a scan). Reads the journal file: call it off the async workers.
    pub fn audit_page(
        &self,
        offset: u64,
        limit: usize,
        order_id: Option<OrderId>,
        newest_first: bool,
    ) -> Result<(Vec<AuditEntry>, u64), OmsError> {
        let journal = &self.inner.journal;
        let decode = |i: u64, bytes: &[u8]| serde_json::from_slice::<Record>(bytes).ok().map(|r| r.audit(i + 1));
        match order_id {
            None => {
                let total = journal.durable_seq();
                let (start, count) = if newest_first {
                    let end = total.saturating_sub(offset);
                    let start = end.saturating_sub(limit as u64);
                    (start, (end - start) as usize)
                } else {
                    (offset, limit)
                };
                let rows = journal.read_range(start, count)?;
                let mut page: Vec<AuditEntry> =
                    rows.iter().enumerate().filter_map(|(i, b)| decode(start + i as u64, b)).collect();
                if newest_first {
                    page.reverse();
                }
                Ok((page, total))
            }
            Some(id) => {
                let mut indexes = self.inner.state.lock().audit_index.get(&id).cloned().unwrap_or_default();
                let durable = journal.durable_seq();
                indexes.retain(|i| *i < durable);
                if newest_first {
                    indexes.reverse();
                }
                let total = indexes.len() as u64;
                let mut page: Vec<u64> = indexes.into_iter().skip(offset as usize).take(limit).collect();
                page.sort_unstable();
                let mut rows: Vec<AuditEntry> =
                    journal.read_at(&page)?.iter().filter_map(|(i, b)| decode(*i, b)).collect();
                if newest_first {
                    rows.reverse();
                }
                Ok((rows, total))
            }
        }
    }

    /// Raises an alert: journaled (the audit trail shows it), counted in `ts_alerts_total{kind}`, logged as an
    /// error and sent to subscribers (the WebSocket's risk channel).
    pub async fn alert(
        &self,
        order_id: Option<OrderId>,
        kind: &str,
        message: &str,
        actor: &Actor,
    ) -> Result<(), OmsError> {
        let seq = {
            let mut st = self.inner.state.lock();
            let rec = self.record(
                &actor.name,
                actor.correlation_id.clone(),
                Entry::Alert { order_id, kind: kind.to_string(), message: message.to_string() },
            );
            self.commit(&mut st, rec)?
        };
        metrics::counter!("ts_alerts_total", "kind" => kind.to_string()).increment(1);
        tracing::error!(kind, ?order_id, message, "alert");
        let _ = self.inner.updates.send(OmsUpdate::Alert {
            order_id,
            kind: kind.to_string(),
            message: message.to_string(),
        });
        self.inner.journal.wait_durable(seq).await?;
        Ok(())
    }

    /// Waits until every record journaled so far is durable (and so visible to [`OrderManager::audit`]).
    pub async fn sync_journal(&self) -> Result<(), OmsError> {
        let seq = self.inner.journal.len();
        self.inner.journal.wait_durable(seq).await?;
        Ok(())
    }

    /// Broker events refused so far: (illegal transitions, duplicate fills). They change nothing but are counted,
    /// so a caller can tell that an event was processed and refused.
    pub fn refused_events(&self) -> (u64, u64) {
        let st = self.inner.state.lock();
        (st.illegal_transitions, st.duplicate_fills)
    }

    /// `None` when healthy, else what is wrong.
    pub fn journal_failure(&self) -> Option<String> {
        self.inner.journal.failure()
    }

    /// Everything that recovery must restore, as JSON: orders (with fills), positions, limits, the kill switch.
    pub fn durable_state(&self) -> serde_json::Value {
        let st = self.inner.state.lock();
        serde_json::json!({
            "orders": st.orders.values().collect::<Vec<_>>(),
            "positions": st.positions.iter().map(|p| (p.symbol.clone(), p.quantity, p.cost, p.realized_today, p.realized_total)).collect::<Vec<_>>(),
            "limits": st.limits,
            "kill_switch": st.kill_switch,
            "session_date": st.session_date,
            "next_id": st.next_id,
        })
    }

    /// Flushes and closes the journal (graceful shutdown).
    pub fn shutdown(&self) {
        self.inner.journal.close();
    }
}

#[cfg(test)]
mod send_check {
    use super::*;
    fn is_send<T: Send>(_: &T) {}
    #[allow(dead_code)]
    fn futures_are_send(oms: &OrderManager, req: OrderRequest, a: &Actor) {
        is_send(&oms.submit(req, a));
        is_send(&oms.cancel(1, a));
        is_send(&oms.activate_kill_switch(a, "", true, false));
    }
}
