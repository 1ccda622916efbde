//! Supervision of trading: risk limits, the kill switch (manual and automatic on the daily loss limit), marking
//! positions to the market, trading sessions and alerts.

use super::broker_events::FLATTEN_SOURCE;
use super::{invalid, Actor, Desk, OmsError, OmsUpdate, OrderManager};
use crate::record::{truncated, Entry};
use crate::state::KillSwitchState;
use chrono::{DateTime, Utc};
use domain::order::{Order, OrderId, OrderRequest, OrderType, TimeInForce, ValidationError};
use domain::risk::{flatten_side, loss_level, LossLevel, RiskLimits};
use domain::{AccountId, Price, Qty, Symbol};

/// Which kill switch, and what it does on the way in.
struct Switch {
    account: Option<AccountId>,
    cancel_open_orders: bool,
    flatten: bool,
    automatic: bool,
}

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
                let switch = Switch { account: None, cancel_open_orders: true, flatten: false, automatic: true };
                if let Err(e) = self.activate_locked(desk, &Actor::new("risk-engine"), &reason, switch) {
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
        switch: Switch,
    ) -> Result<(u64, Vec<Order>), OmsError> {
        let Switch { account, cancel_open_orders, flatten, automatic } = switch;
        let entry = Entry::KillSwitch {
            active: true,
            reason: reason.to_string(),
            cancel_open_orders,
            flatten,
            automatic,
            account: account.clone(),
        };
        let mut seq = self.append(desk, actor, entry)?;
        let state = match &account {
            None => {
                metrics::gauge!("ts_kill_switch_active").set(1.0);
                desk.state.kill_switch().clone()
            }
            Some(a) => desk.state.account_kill_switches().get(a).cloned().unwrap_or_default(),
        };
        self.publish(OmsUpdate::KillSwitch(state));
        let concerned = |o: &Order| account.as_ref().is_none_or(|a| &o.account == a);
        if cancel_open_orders {
            let open: Vec<OrderId> = desk.state.open_orders().filter(|o| concerned(o)).map(|o| o.id).collect();
            for id in open {
                self.request_cancel_locked(desk, id, "kill-switch");
            }
        }
        let mut flatten_orders = Vec::new();
        if flatten {
            let now = self.now();
            // Each account's position is flattened by an order booked to that account (and routed to its broker).
            let mut positions: Vec<(AccountId, Symbol, Qty)> = desk
                .state
                .account_positions()
                .iter()
                .filter(|(a, _)| account.as_ref().is_none_or(|want| want == *a))
                .flat_map(|(a, b)| b.iter().map(move |p| (a.clone(), p.symbol, p.quantity)))
                .collect();
            if positions.is_empty() && account.is_none() {
                // State from before positions were kept per account: the desk's, booked to whoever flattens.
                positions = desk.state.positions().iter().map(|p| (actor.account(), p.symbol, p.quantity)).collect();
            }
            for (owner, symbol, qty) in positions {
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
                let order = Order::new(desk.state.next_id(), &owner, &req, now);
                seq = self.append(desk, actor, Entry::OrderSubmitted { order: order.clone() })?;
                flatten_orders.push(order);
            }
        }
        Ok((self.inner.journal.len().max(seq), flatten_orders))
    }

    /// The global kill switch: blocks every account.
    pub async fn activate_kill_switch(
        &self,
        actor: &Actor,
        reason: &str,
        cancel_open_orders: bool,
        flatten: bool,
    ) -> Result<KillSwitchState, OmsError> {
        let switch = Switch { account: None, cancel_open_orders, flatten, automatic: false };
        self.activate(actor, reason, switch).await
    }

    /// One account's kill switch: its new orders are refused, its open orders canceled and its positions
    /// flattened (as asked); other accounts trade on.
    pub async fn activate_account_kill_switch(
        &self,
        account: AccountId,
        actor: &Actor,
        reason: &str,
        cancel_open_orders: bool,
        flatten: bool,
    ) -> Result<KillSwitchState, OmsError> {
        let switch = Switch { account: Some(account), cancel_open_orders, flatten, automatic: false };
        self.activate(actor, reason, switch).await
    }

    async fn activate(&self, actor: &Actor, reason: &str, switch: Switch) -> Result<KillSwitchState, OmsError> {
        let account = switch.account.clone();
        let (seq, flatten_orders) = self.activate_locked(&mut self.lock(), actor, reason, switch)?;
        self.inner.journal.wait_durable(seq).await?;
        let broker = self.broker()?.clone();
        for o in flatten_orders {
            self.send_to_broker(broker.as_ref(), &o);
        }
        Ok(self.switch_state(account.as_ref()))
    }

    fn switch_state(&self, account: Option<&AccountId>) -> KillSwitchState {
        let desk = self.lock();
        match account {
            None => desk.state.kill_switch().clone(),
            Some(a) => desk
                .state
                .account_kill_switches()
                .get(a)
                .cloned()
                .unwrap_or_else(|| KillSwitchState { account: Some(a.clone()), ..KillSwitchState::default() }),
        }
    }

    pub async fn release_kill_switch(&self, actor: &Actor, reason: &str) -> Result<KillSwitchState, OmsError> {
        self.release(None, actor, reason).await
    }

    pub async fn release_account_kill_switch(
        &self,
        account: AccountId,
        actor: &Actor,
        reason: &str,
    ) -> Result<KillSwitchState, OmsError> {
        self.release(Some(account), actor, reason).await
    }

    async fn release(
        &self,
        account: Option<AccountId>,
        actor: &Actor,
        reason: &str,
    ) -> Result<KillSwitchState, OmsError> {
        let seq = {
            let mut desk = self.lock();
            let active = match &account {
                None => desk.state.kill_switch().active,
                Some(a) => desk.state.account_kill_switches().get(a).is_some_and(|k| k.active),
            };
            if !active {
                drop(desk);
                return Ok(self.switch_state(account.as_ref()));
            }
            let entry = Entry::KillSwitch {
                active: false,
                reason: reason.to_string(),
                cancel_open_orders: false,
                flatten: false,
                automatic: false,
                account: account.clone(),
            };
            self.append(&mut desk, actor, entry)?
        };
        if account.is_none() {
            metrics::gauge!("ts_kill_switch_active").set(0.0);
        }
        self.inner.journal.wait_durable(seq).await?;
        let state = self.switch_state(account.as_ref());
        self.publish(OmsUpdate::KillSwitch(state.clone()));
        Ok(state)
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
