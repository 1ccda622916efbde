//! Commands from callers: submit (decide → journal → route → confirm), cancel, and requests refused before they
//! became orders.

use super::{invalid, Actor, Desk, Durability, OmsError, OrderManager};
use crate::record::{request_summary, truncated, Entry, SUMMARY_MESSAGE_CHARS};
use domain::broker::{Broker, BrokerError};
use domain::order::{validate, validate_amendment, Amendment, Order, OrderEvent, OrderId, OrderRequest, OrderStatus};
use domain::risk::RiskContext;
use domain::{Price, Qty};

/// A modify: the terms to change (at least one); the others stay as they are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modify {
    pub quantity: Option<Qty>,
    pub price: Option<Price>,
    pub stop_price: Option<Price>,
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

/// The order `id` if it is working at the broker (acknowledged, not done): what a cancel or a modify needs.
fn working<'a>(desk: &'a Desk, id: OrderId, verb: &str) -> Result<&'a Order, OmsError> {
    let order = desk.state.order(id).ok_or(OmsError::NotFound(id))?;
    match order.status {
        OrderStatus::New | OrderStatus::PartiallyFilled => Ok(order),
        OrderStatus::PendingNew => {
            Err(OmsError::Conflict(format!("order {id} is not yet acknowledged by the broker; retry shortly")))
        }
        s => Err(OmsError::Conflict(format!("order {id} is {s} and cannot be {verb}"))),
    }
}

/// New orders and modifies wait while routing for the account is down; an account no broker serves is refused.
fn routable(broker: &dyn Broker, account: &domain::AccountId) -> Result<(), OmsError> {
    match broker.routable(account) {
        Ok(()) => Ok(()),
        Err(BrokerError::RoutingDown(why)) => {
            Err(OmsError::Unavailable(format!("order routing is down ({why}); new orders and modifies are paused")))
        }
        Err(e) => Err(OmsError::Conflict(e.to_string())),
    }
}

impl OrderManager {
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
            self.send_to_broker(broker.as_ref(), order);
        }
        Ok(Routed { seq, decision })
    }

    /// Hands a journaled order to the broker; a broker that cannot take it rejects it.
    pub(super) fn send_to_broker(&self, broker: &dyn Broker, order: &Order) {
        if let Err(e) = broker.submit(order) {
            self.apply_broker_event(
                order.id,
                OrderEvent::Rejected { code: "BROKER_UNAVAILABLE".into(), reason: e.to_string() },
                "broker",
            );
        }
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

    /// The synchronous part of a submission, under the state lock: returns the journal sequence to wait for.
    fn decide(&self, req: &OrderRequest, actor: &Actor, broker: &dyn Broker) -> Result<(u64, Decision), OmsError> {
        let now = self.now();
        let mut guard = self.lock();
        let desk = &mut *guard;
        self.roll_session_locked(desk, now)?;
        let account = actor.account();
        if let Some(coid) = &req.client_order_id {
            if let Some(id) = desk.state.by_client_id(&account, coid) {
                let existing = desk.state.order(id).cloned().ok_or(OmsError::NotFound(id))?;
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
        let last = desk.state.last_price(&req.symbol);
        let checked = match ins {
            None => Err(invalid("symbol", format!("unknown symbol {:?}", truncated(&req.symbol, 32)))),
            Some(ins) => validate(req, ins, last),
        };
        let ins = match (checked, ins) {
            (Ok(()), Some(ins)) => ins,
            (Err(e), _) => {
                let entry = Entry::OrderInvalid {
                    request: request_summary(&serde_json::to_value(req).unwrap_or_default()),
                    field: e.field.to_string(),
                    message: truncated(&e.message, SUMMARY_MESSAGE_CHARS),
                };
                let seq = self.append(desk, actor, entry)?;
                metrics::counter!("ts_orders_total", "result" => "invalid").increment(1);
                return Ok((seq, Decision::Refused(OmsError::Invalid(e))));
            }
            (Ok(()), None) => return Err(OmsError::Invalid(invalid("symbol", "unknown symbol"))),
        };
        routable(broker, &account)?;
        let st = &desk.state;
        let ctx = RiskContext {
            account: &account,
            now,
            kill_switch_active: st.blocked(&account),
            market_open: self.inner.calendar.is_open(now),
            last_price: last,
            net_position: st.positions().net_quantity(&req.symbol),
            open_same_side: st.open_same_side(req.symbol, req.side),
            daily_pnl: st.positions().daily_pnl(),
        };
        let mut order = Order::new(st.next_id(), &account, req, now);
        match desk.risk.check(req, ins, st.limits(), &ctx) {
            Err(rejection) => {
                let code = rejection.code().to_string();
                let _ =
                    order.apply(&OrderEvent::Rejected { code: code.clone(), reason: rejection.message.clone() }, now);
                let entry = Entry::OrderRejected {
                    order: order.clone(),
                    check: rejection.check,
                    code: code.clone(),
                    reason: rejection.message.clone(),
                };
                let seq = self.append(desk, actor, entry)?;
                metrics::counter!("ts_orders_total", "result" => "rejected").increment(1);
                metrics::counter!("ts_risk_rejections_total", "check" => code).increment(1);
                Ok((seq, Decision::Refused(OmsError::Risk { order: Box::new(order), rejection })))
            }
            Ok(()) => {
                let seq =
                    self.append_with(desk, actor, Entry::OrderSubmitted { order: order.clone() }, Durability::Lazy)?;
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
        let seq = self.append(&mut self.lock(), actor, entry)?;
        metrics::counter!("ts_orders_total", "result" => "invalid").increment(1);
        self.inner.journal.wait_durable(seq).await?;
        Ok(())
    }

    pub async fn cancel(&self, id: OrderId, actor: &Actor) -> Result<Order, OmsError> {
        let seq = self.record_cancel_request(id, actor)?;
        self.inner.journal.wait_durable(seq).await?;
        self.send_cancel(id)
    }

    /// [`OrderManager::cancel`] on the caller's thread, for an Order Manager whose journal is in memory (a
    /// backtest): there is no disk to wait for between recording the request and sending it.
    pub fn cancel_inline(&self, id: OrderId, actor: &Actor) -> Result<Order, OmsError> {
        if !self.inner.journal.is_in_memory() {
            return Err(OmsError::Conflict("cancel_inline needs an in-memory journal".into()));
        }
        self.record_cancel_request(id, actor)?;
        self.send_cancel(id)
    }

    fn send_cancel(&self, id: OrderId) -> Result<Order, OmsError> {
        let broker = self.broker()?.clone();
        if let Err(e) = broker.cancel(id) {
            self.apply_broker_event(id, OrderEvent::CancelRejected { reason: e.to_string() }, "broker");
        }
        self.get(id).ok_or(OmsError::NotFound(id))
    }

    fn record_cancel_request(&self, id: OrderId, actor: &Actor) -> Result<u64, OmsError> {
        self.broker()?;
        let seq = {
            let mut desk = self.lock();
            working(&desk, id, "canceled")?;
            self.append(&mut desk, actor, Entry::OrderEvent { order_id: id, event: OrderEvent::CancelRequested })?
        };
        Ok(seq)
    }

    /// Modifies a working order's quantity and/or prices: validated and risk-checked as a new order with the new
    /// terms would be (the position limit counts the new remaining quantity instead of the old), journaled as a
    /// pending replace, then sent. The order keeps working on its old terms until the broker confirms.
    pub async fn modify(&self, id: OrderId, change: Modify, actor: &Actor) -> Result<Order, OmsError> {
        let (seq, amendment) = self.record_replace_request(id, change, actor)?;
        self.inner.journal.wait_durable(seq).await?;
        let broker = self.broker()?.clone();
        let order = self.get(id).ok_or(OmsError::NotFound(id))?;
        if let Err(e) = broker.replace(&order, &amendment) {
            self.apply_broker_event(id, OrderEvent::ReplaceRejected { reason: e.to_string() }, "broker");
        }
        self.get(id).ok_or(OmsError::NotFound(id))
    }

    /// [`OrderManager::modify`] without waiting for the disk (the request is journaled, then sent at once; the
    /// journal syncs in the background): for strategies, live on the caller's thread and in a backtest.
    pub fn modify_routed(&self, id: OrderId, change: Modify, actor: &Actor) -> Result<Order, OmsError> {
        let (_, amendment) = self.record_replace_request(id, change, actor)?;
        self.flush_soon();
        let broker = self.broker()?.clone();
        let order = self.get(id).ok_or(OmsError::NotFound(id))?;
        if let Err(e) = broker.replace(&order, &amendment) {
            self.apply_broker_event(id, OrderEvent::ReplaceRejected { reason: e.to_string() }, "broker");
        }
        self.get(id).ok_or(OmsError::NotFound(id))
    }

    fn record_replace_request(&self, id: OrderId, change: Modify, actor: &Actor) -> Result<(u64, Amendment), OmsError> {
        let broker = self.broker()?.clone();
        let mut guard = self.lock();
        let desk = &mut *guard;
        let now = self.now();
        let order = working(desk, id, "modified")?;
        if order.pending_replace.is_some() {
            return Err(OmsError::Conflict(format!("order {id} has a modify pending at the broker; retry shortly")));
        }
        let amendment = Amendment {
            quantity: change.quantity.unwrap_or(order.quantity),
            price: change.price.or(order.price),
            stop_price: change.stop_price.or(order.stop_price),
        };
        let last = desk.state.last_price(&order.symbol);
        let ins = self.inner.instruments.get(&order.symbol).ok_or_else(|| invalid("symbol", "unknown symbol"));
        if let Err(e) = ins.and_then(|ins| validate_amendment(order, &amendment, ins, last)) {
            let entry = Entry::OrderInvalid {
                request: serde_json::json!({ "modify": id, "quantity": change.quantity, "price": change.price, "stop_price": change.stop_price }),
                field: e.field.to_string(),
                message: truncated(&e.message, SUMMARY_MESSAGE_CHARS),
            };
            self.append(desk, actor, entry)?;
            return Err(OmsError::Invalid(e));
        }
        routable(broker.as_ref(), &order.account)?;
        // The risk engine sees the modify as the order it becomes: what still has to trade, beside the other
        // open orders.
        let order = order.clone();
        let mut req =
            OrderRequest::new(order.symbol, order.side, order.order_type, amendment.quantity, amendment.price);
        req.quantity = amendment.quantity - order.filled_quantity;
        req.stop_price = amendment.stop_price;
        req.time_in_force = order.time_in_force;
        req.position_type = order.position_type;
        let st = &desk.state;
        let ctx = RiskContext {
            account: &order.account,
            now,
            kill_switch_active: st.blocked(&order.account),
            market_open: self.inner.calendar.is_open(now),
            last_price: last,
            net_position: st.positions().net_quantity(&order.symbol),
            open_same_side: st.open_same_side(order.symbol, order.side) - order.leaves_quantity(),
            daily_pnl: st.positions().daily_pnl(),
        };
        let Some(ins) = self.inner.instruments.get(&order.symbol) else {
            return Err(OmsError::Invalid(invalid("symbol", "unknown symbol")));
        };
        if let Err(rejection) = desk.risk.check(&req, ins, st.limits(), &ctx) {
            let code = rejection.code().to_string();
            let entry = Entry::ModifyRejected {
                order_id: id,
                amendment,
                check: rejection.check,
                code: code.clone(),
                reason: rejection.message.clone(),
            };
            self.append(desk, actor, entry)?;
            metrics::counter!("ts_risk_rejections_total", "check" => code).increment(1);
            return Err(OmsError::Risk { order: Box::new(order), rejection });
        }
        let entry = Entry::OrderEvent { order_id: id, event: OrderEvent::ReplaceRequested(amendment) };
        let seq = self.append(desk, actor, entry)?;
        metrics::counter!("ts_order_modifies_total").increment(1);
        Ok((seq, amendment))
    }

    /// Whether `desk` holds a cancelable order `id`, for the cancels the Order Manager sends on its own.
    pub(super) fn cancelable(desk: &Desk, id: OrderId) -> bool {
        desk.state.order(id).is_some_and(|o| matches!(o.status, OrderStatus::New | OrderStatus::PartiallyFilled))
    }
}
