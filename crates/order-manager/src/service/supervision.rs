//! Supervision of trading: risk limits, the kill switch (manual and automatic on the daily loss limit), marking
//! positions to the market, trading sessions and alerts.

use super::broker_events::FLATTEN_SOURCE;
use super::{invalid, Actor, Desk, OmsError, OmsUpdate, OrderManager};
use crate::record::{truncated, Entry};
use crate::state::KillSwitchState;
use chrono::{DateTime, Utc};
use domain::order::{Order, OrderId, OrderRequest, OrderType, TimeInForce, ValidationError};
use domain::risk::{flatten_side, loss_level, LossLevel, RiskLimits};
use domain::{Price, Qty, Symbol};

impl OrderManager {
    /// Starts a new trading date when the clock has moved past the recorded one.
    pub(super) fn roll_session_locked(&self, desk: &mut Desk, now: DateTime<Utc>) -> Result<(), OmsError> {
        if desk.session_rolls_at.is_some_and(|t| now < t) {
            return Ok(());
        }
        let today = self.inner.calendar.session_date(now);
        if desk.state.session_date() != Some(today) {
            self.append(desk, &Actor::new("system"), Entry::SessionStarted { date: today })?;
        }
        desk.session_rolls_at = Some(self.inner.calendar.next_date_change(now));
        Ok(())
    }

    /// Marks positions to a trade from the market and enforces the daily loss limit.
    pub fn on_market_trade(&self, symbol: &str, price: Price) {
        let now = self.now();
        let mut guard = self.lock();
        let desk = &mut *guard;
        if let Err(e) = self.roll_session_locked(desk, now) {
            tracing::error!(error = %e, "could not start the new session");
        }
        if desk.state.mark(symbol, price) {
            self.check_daily_loss_locked(desk);
        }
    }

    pub(super) fn check_daily_loss_locked(&self, desk: &mut Desk) {
        let pnl = desk.state.positions().daily_pnl();
        if let Some(pnl) = pnl {
            metrics::gauge!("ts_daily_pnl_brl").set(pnl.to_f64());
        }
        let limit = desk.state.limits().daily_loss_limit;
        match (loss_level(pnl, limit), pnl) {
            (LossLevel::Breached, _) if !desk.state.kill_switch().active => {
                let reason = match pnl {
                    Some(pnl) => format!("automatic: daily P&L {pnl} reached the loss limit {limit}"),
                    None => "automatic: the daily P&L is beyond the range of the books".to_string(),
                };
                tracing::warn!(%reason, "daily loss limit breached; activating the kill switch");
                if let Err(e) = self.activate_locked(desk, &Actor::new("risk-engine"), &reason, true, false, true) {
                    tracing::error!(error = %e, "could not activate the kill switch automatically");
                }
            }
            (LossLevel::Warning | LossLevel::Breached, Some(pnl)) if !desk.state.loss_warned() => {
                let entry = Entry::LossWarning { daily_pnl: pnl, limit };
                if self.append(desk, &Actor::new("risk-engine"), entry).is_ok() {
                    tracing::warn!(daily_pnl = %pnl, %limit, "daily loss at 80% of the limit");
                    self.publish(OmsUpdate::LossWarning { daily_pnl: pnl, limit });
                }
            }
            _ => {}
        }
    }

    /// Returns the journal sequence to wait for and the flatten orders to route once durable.
    fn activate_locked(
        &self,
        desk: &mut Desk,
        actor: &Actor,
        reason: &str,
        cancel_open_orders: bool,
        flatten: bool,
        automatic: bool,
    ) -> Result<(u64, Vec<Order>), OmsError> {
        let entry =
            Entry::KillSwitch { active: true, reason: reason.to_string(), cancel_open_orders, flatten, automatic };
        let mut seq = self.append(desk, actor, entry)?;
        metrics::gauge!("ts_kill_switch_active").set(1.0);
        self.publish(OmsUpdate::KillSwitch(desk.state.kill_switch().clone()));
        if cancel_open_orders {
            let open: Vec<OrderId> = desk.state.open_ids().collect();
            for id in open {
                self.request_cancel_locked(desk, id, "kill-switch");
            }
        }
        let mut flatten_orders = Vec::new();
        if flatten {
            let now = self.now();
            let positions: Vec<(Symbol, Qty)> = desk.state.positions().iter().map(|p| (p.symbol, p.quantity)).collect();
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
                let order = Order::new(desk.state.next_id(), &actor.account(), &req, now);
                seq = self.append(desk, actor, Entry::OrderSubmitted { order: order.clone() })?;
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
        let (seq, flatten_orders) =
            self.activate_locked(&mut self.lock(), actor, reason, cancel_open_orders, flatten, false)?;
        self.inner.journal.wait_durable(seq).await?;
        let broker = self.broker()?.clone();
        for o in flatten_orders {
            self.send_to_broker(broker.as_ref(), &o);
        }
        Ok(self.kill_switch())
    }

    pub async fn release_kill_switch(&self, actor: &Actor, reason: &str) -> Result<KillSwitchState, OmsError> {
        let seq = {
            let mut desk = self.lock();
            if !desk.state.kill_switch().active {
                return Ok(desk.state.kill_switch().clone());
            }
            let entry = Entry::KillSwitch {
                active: false,
                reason: reason.to_string(),
                cancel_open_orders: false,
                flatten: false,
                automatic: false,
            };
            let seq = self.append(&mut desk, actor, entry)?;
            self.publish(OmsUpdate::KillSwitch(desk.state.kill_switch().clone()));
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
            let mut desk = self.lock();
            let mut limits = desk.state.limits().clone();
            change(&mut limits);
            if let Err((field, message)) = limits.validate() {
                return Err(OmsError::Invalid(ValidationError { field, message }));
            }
            if let Some(sym) = limits.symbols.keys().find(|s| self.inner.instruments.get(s).is_none()) {
                return Err(OmsError::Invalid(invalid("symbols", format!("unknown symbol {:?}", truncated(sym, 32)))));
            }
            let entry = Entry::LimitsChanged { limits: limits.clone(), reason: reason.to_string() };
            (self.append(&mut desk, actor, entry)?, limits)
        };
        self.inner.journal.wait_durable(seq).await?;
        Ok(limits)
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
        let entry = Entry::Alert { order_id, kind: kind.to_string(), message: message.to_string() };
        let seq = self.append(&mut self.lock(), actor, entry)?;
        metrics::counter!("ts_alerts_total", "kind" => kind.to_string()).increment(1);
        tracing::error!(kind, ?order_id, message, "alert");
        self.publish(OmsUpdate::Alert { order_id, kind: kind.to_string(), message: message.to_string() });
        self.inner.journal.wait_durable(seq).await?;
        Ok(())
    }
}
