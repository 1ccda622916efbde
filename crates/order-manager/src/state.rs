//! The Order Manager's in-memory state and the one function that changes it.
//!
//! Live processing and journal replay both go through [`OmsState::apply`], so a restarted server rebuilds
//! exactly the state it acknowledged.

use crate::record::{Entry, Record};
use chrono::{DateTime, NaiveDate, Utc};
use domain::order::{Applied, Order, OrderEvent, OrderId, OrderStatus, Side};
use domain::risk::{RiskEngine, RiskLimits};
use domain::{Instruments, PositionBook, Price, Qty};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KillSwitchState {
    pub active: bool,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub automatic: bool,
    pub cancel_open_orders: bool,
}

#[derive(Default)]
pub struct OmsState {
    pub orders: BTreeMap<OrderId, Order>,
    pub open: BTreeSet<OrderId>,
    /// (account, client_order_id) → order: the idempotency index.
    pub by_client_id: HashMap<(String, String), OrderId>,
    /// Unfilled quantity of open orders per (symbol, side), maintained incrementally for the position check.
    pub open_qty: HashMap<(String, Side), Qty>,
    pub positions: PositionBook,
    pub limits: RiskLimits,
    pub kill_switch: KillSwitchState,
    pub risk: RiskEngine,
    pub next_id: OrderId,
    pub session_date: Option<NaiveDate>,
    /// When the next session date begins; derived, not journaled (saves a time-zone conversion per order).
    pub session_rolls_at: Option<DateTime<Utc>>,
    pub loss_warned: bool,
    pub last_prices: HashMap<String, Price>,
    pub illegal_transitions: u64,
    pub duplicate_fills: u64,
    /// Order → the 0-based journal indexes of its records, so an order's audit trail is read without a scan.
    pub audit_index: HashMap<OrderId, Vec<u64>>,
}

/// What applying a record changed, for metrics and notifications.
#[derive(Debug, Default)]
pub struct Effects {
    pub order_changed: Option<OrderId>,
    pub fill: bool,
    pub duplicate_fill: bool,
    pub illegal: Option<String>,
}

impl OmsState {
    pub fn new() -> Self {
        OmsState { next_id: 1, ..Default::default() }
    }

    pub fn open_same_side(&self, symbol: &str, side: Side) -> Qty {
        self.open_qty.get(&(symbol.to_string(), side)).copied().unwrap_or(0)
    }

    fn track_open(&mut self, order_id: OrderId, leaves_before: Qty) {
        let Some(o) = self.orders.get(&order_id) else {
            return;
        };
        let leaves_after = o.leaves_quantity();
        let key = (o.symbol.clone(), o.side);
        let delta = leaves_after - leaves_before;
        if delta != 0 {
            *self.open_qty.entry(key).or_insert(0) += delta;
        }
        if o.status.is_open() {
            self.open.insert(order_id);
        } else {
            self.open.remove(&order_id);
        }
    }

    fn insert_order(&mut self, order: &Order) {
        self.next_id = self.next_id.max(order.id + 1);
        if let Some(c) = &order.client_order_id {
            self.by_client_id.insert((order.account.clone(), c.clone()), order.id);
        }
        self.orders.insert(order.id, order.clone());
        self.track_open(order.id, 0);
    }

    /// Applies one record. Refused transitions are reported in [`Effects::illegal`] and change nothing.
    pub fn apply(&mut self, record: &Record, instruments: &Instruments) -> Effects {
        let mut fx = Effects::default();
        match &record.entry {
            Entry::OrderSubmitted { order } | Entry::OrderRejected { order, .. } => {
                self.insert_order(order);
                fx.order_changed = Some(order.id);
            }
            Entry::OrderInvalid { .. } | Entry::Reconciled { .. } | Entry::Alert { .. } | Entry::Started { .. } => {}
            Entry::OrderEvent { order_id, event } => {
                let Some(order) = self.orders.get_mut(order_id) else {
                    self.illegal_transitions += 1;
                    fx.illegal = Some(format!("event for unknown order {order_id}"));
                    return fx;
                };
                let leaves_before = order.leaves_quantity();
                match order.apply(event, record.ts) {
                    Ok(Applied::Changed) => {
                        fx.order_changed = Some(*order_id);
                        if let OrderEvent::Filled(fill) = event {
                            fx.fill = true;
                            let (symbol, side) = (order.symbol.clone(), order.side);
                            let multiplier = instruments
                                .get(&symbol)
                                .map(|i| i.multiplier)
                                .or_else(|| domain::instrument::contract_multiplier(&symbol))
                                .unwrap_or(domain::Money::from_brl(1));
                            self.positions.apply_fill(&symbol, multiplier, side, fill.quantity, fill.price);
                            if let Some(last) = self.last_prices.get(&symbol) {
                                self.positions.mark(&symbol, *last);
                            }
                        }
                        self.track_open(*order_id, leaves_before);
                    }
                    Ok(Applied::DuplicateFill) => {
                        self.duplicate_fills += 1;
                        fx.duplicate_fill = true;
                    }
                    Err(e) => {
                        self.illegal_transitions += 1;
                        fx.illegal = Some(format!("order {order_id}: {e}"));
                    }
                }
            }
            Entry::LimitsChanged { limits, .. } => self.limits = limits.clone(),
            Entry::KillSwitch { active, reason, cancel_open_orders, automatic, .. } => {
                self.kill_switch = KillSwitchState {
                    active: *active,
                    reason: Some(reason.clone()),
                    actor: Some(record.actor.clone()),
                    since: Some(record.ts),
                    automatic: *automatic,
                    cancel_open_orders: *active && *cancel_open_orders,
                };
            }
            Entry::LossWarning { .. } => self.loss_warned = true,
            Entry::SessionStarted { date } => {
                self.session_date = Some(*date);
                self.positions.reset_day();
                self.loss_warned = false;
            }
        }
        fx
    }

    pub fn open_orders(&self) -> impl Iterator<Item = &Order> {
        self.open.iter().filter_map(|id| self.orders.get(id))
    }

    pub fn count_by_status(&self) -> BTreeMap<OrderStatus, usize> {
        let mut m = BTreeMap::new();
        for o in self.orders.values() {
            *m.entry(o.status).or_insert(0) += 1;
        }
        m
    }
}
