//! The Order Manager's journaled state and the one function that changes it.
//!
//! Live processing, journal replay and the snapshot writer all go through [`OmsState::apply`], so a restarted
//! server rebuilds exactly the state it acknowledged. Fields are private: the rest of the crate reads them through
//! accessors and changes them only by applying records (marking positions to market prices is the one other
//! change, and it is not journaled: prices are market data, replayed or not).

use crate::record::{Entry, Record};
use chrono::{DateTime, NaiveDate, Utc};
use domain::order::{Applied, Order, OrderEvent, OrderId, OrderStatus, Side};
use domain::risk::RiskLimits;
use domain::{AccountId, Instruments, PositionBook, Price, Qty, Symbol};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KillSwitchState {
    pub active: bool,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub automatic: bool,
    pub cancel_open_orders: bool,
    /// The account this switch blocks; absent for the global switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub account: Option<AccountId>,
}

/// What a snapshot holds: everything [`OmsState::apply`] builds, minus what is derived from it (the open set,
/// the idempotency index, open quantities and counts are rebuilt on load).
#[derive(Serialize, Deserialize)]
pub(crate) struct Persisted {
    /// The number of journal records applied to reach this state.
    pub applied: u64,
    pub orders: Vec<Order>,
    pub positions: PositionBook,
    pub limits: RiskLimits,
    pub kill_switch: KillSwitchState,
    pub next_id: OrderId,
    pub session_date: Option<NaiveDate>,
    pub loss_warned: bool,
    /// Positions per account (snapshots written before accounts had their own books lack it: empty).
    #[serde(default)]
    pub account_positions: BTreeMap<AccountId, PositionBook>,
    #[serde(default)]
    pub account_kill_switches: BTreeMap<AccountId, KillSwitchState>,
    pub illegal_transitions: u64,
    pub duplicate_fills: u64,
    pub audit_index: Vec<(OrderId, Vec<u64>)>,
}

#[derive(Default)]
pub struct OmsState {
    orders: BTreeMap<OrderId, Order>,
    open: BTreeSet<OrderId>,
    /// (account, client_order_id) → order: the idempotency index.
    by_client_id: HashMap<(AccountId, String), OrderId>,
    /// Unfilled quantity of open orders per (symbol, side), maintained incrementally for the position check.
    open_qty: HashMap<(Symbol, Side), Qty>,
    /// Orders per status, maintained incrementally so `/metrics` never walks the orders.
    status_counts: BTreeMap<OrderStatus, usize>,
    /// The desk's positions: every account together (what the risk limits and the daily loss limit see).
    positions: PositionBook,
    /// The same fills, booked per account.
    account_positions: BTreeMap<AccountId, PositionBook>,
    limits: RiskLimits,
    /// The global kill switch, and each account's own.
    kill_switch: KillSwitchState,
    account_kill_switches: BTreeMap<AccountId, KillSwitchState>,
    next_id: OrderId,
    session_date: Option<NaiveDate>,
    loss_warned: bool,
    last_prices: HashMap<String, Price>,
    illegal_transitions: u64,
    duplicate_fills: u64,
    /// Order → the 0-based journal indexes of its records, so an order's audit trail is read without a scan.
    audit_index: HashMap<OrderId, Vec<u64>>,
    /// Journal records applied so far (the next record's 0-based index).
    applied: u64,
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

    fn count_status(&mut self, from: Option<OrderStatus>, to: OrderStatus) {
        if from == Some(to) {
            return;
        }
        if let Some(from) = from {
            if let Some(n) = self.status_counts.get_mut(&from) {
                *n = n.saturating_sub(1);
            }
        }
        *self.status_counts.entry(to).or_insert(0) += 1;
    }

    fn track_open(&mut self, order_id: OrderId, leaves_before: Qty, status_before: Option<OrderStatus>) {
        let Some(o) = self.orders.get(&order_id) else {
            return;
        };
        let (leaves_after, status) = (o.leaves_quantity(), o.status);
        let delta = leaves_after - leaves_before;
        if !delta.is_zero() {
            *self.open_qty.entry((o.symbol, o.side)).or_insert(Qty::ZERO) += delta;
        }
        if status.is_open() {
            self.open.insert(order_id);
        } else {
            self.open.remove(&order_id);
        }
        self.count_status(status_before, status);
    }

    fn insert_order(&mut self, order: Order) {
        let id = order.id;
        self.next_id = self.next_id.max(id + 1);
        if let Some(c) = &order.client_order_id {
            self.by_client_id.insert((order.account.clone(), c.clone()), id);
        }
        let before = self.orders.insert(id, order).map(|o| (o.leaves_quantity(), o.status));
        let (leaves, status) = before.map_or((Qty::ZERO, None), |(l, s)| (l, Some(s)));
        self.track_open(id, leaves, status);
    }

    /// Counts a journal record that could not be decoded (written by another version): it changes nothing, but
    /// the indexes of the records after it stay right.
    pub fn skip_undecodable(&mut self) {
        self.applied += 1;
    }

    /// Applies the journal's next record. Refused transitions are reported in [`Effects::illegal`] and change
    /// nothing but the counters.
    pub fn apply(&mut self, record: &Record, instruments: &Instruments) -> Effects {
        let index = self.applied;
        self.applied += 1;
        if let Some(id) = record.entry.order_id() {
            self.audit_index.entry(id).or_default().push(index);
        }
        let mut fx = Effects::default();
        match &record.entry {
            Entry::OrderSubmitted { order } | Entry::OrderRejected { order, .. } => {
                self.insert_order(order.clone());
                fx.order_changed = Some(order.id);
            }
            Entry::OrderInvalid { .. }
            | Entry::ModifyRejected { .. }
            | Entry::Reconciled { .. }
            | Entry::Alert { .. }
            | Entry::Started { .. } => {}
            Entry::OrderEvent { order_id, event } => {
                let Some(order) = self.orders.get_mut(order_id) else {
                    self.illegal_transitions += 1;
                    fx.illegal = Some(format!("event for unknown order {order_id}"));
                    return fx;
                };
                let (leaves_before, status_before) = (order.leaves_quantity(), order.status);
                // A fill's effect on the position is computed first: one that would overflow the books is refused
                // before the order changes, so order and position never disagree.
                let mut position_effect = None;
                if let OrderEvent::Filled(fill) = event {
                    let multiplier = instruments
                        .get(&order.symbol)
                        .map(|i| i.multiplier)
                        .or_else(|| domain::instrument::contract_multiplier(&order.symbol))
                        .unwrap_or(domain::Money::from_brl(1));
                    let effect =
                        self.positions.effect_of_fill(order.symbol, multiplier, order.side, fill.quantity, fill.price);
                    let no_book = PositionBook::default();
                    let book = self.account_positions.get(&order.account).unwrap_or(&no_book);
                    let in_account =
                        book.effect_of_fill(order.symbol, multiplier, order.side, fill.quantity, fill.price);
                    let (Some(effect), Some(in_account)) = (effect, in_account) else {
                        self.illegal_transitions += 1;
                        fx.illegal =
                            Some(format!("order {order_id}: the fill {} overflows the position", fill.exec_id));
                        return fx;
                    };
                    position_effect = Some((multiplier, effect, in_account));
                }
                match order.apply(event, record.ts) {
                    Ok(Applied::Changed) => {
                        fx.order_changed = Some(*order_id);
                        if let (OrderEvent::Filled(fill), Some((multiplier, effect, in_account))) =
                            (event, position_effect)
                        {
                            fx.fill = true;
                            let symbol = order.symbol;
                            let book = self.account_positions.entry(order.account.clone()).or_default();
                            book.commit_fill(symbol, multiplier, fill.price, in_account);
                            self.positions.commit_fill(symbol, multiplier, fill.price, effect);
                            if let Some(last) = self.last_prices.get(symbol.as_str()) {
                                self.positions.mark(&symbol, *last);
                                book.mark(&symbol, *last);
                            }
                        }
                        self.track_open(*order_id, leaves_before, Some(status_before));
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
            Entry::KillSwitch { active, reason, cancel_open_orders, automatic, account, .. } => {
                let state = KillSwitchState {
                    active: *active,
                    reason: Some(reason.clone()),
                    actor: Some(record.actor.clone()),
                    since: Some(record.ts),
                    automatic: *automatic,
                    cancel_open_orders: *active && *cancel_open_orders,
                    account: account.clone(),
                };
                match account {
                    None => self.kill_switch = state,
                    Some(a) => {
                        self.account_kill_switches.insert(a.clone(), state);
                    }
                }
            }
            Entry::LossWarning { .. } => self.loss_warned = true,
            Entry::SessionStarted { date } => {
                self.session_date = Some(*date);
                self.positions.reset_day();
                self.account_positions.values_mut().for_each(PositionBook::reset_day);
                self.loss_warned = false;
            }
        }
        fx
    }

    /// Marks positions to a market price; true when a position in `symbol` changed value.
    pub fn mark(&mut self, symbol: &str, price: Price) -> bool {
        self.last_prices.insert(symbol.to_string(), price);
        for book in self.account_positions.values_mut() {
            book.mark(symbol, price);
        }
        self.positions.mark(symbol, price)
    }

    // ---- reads ----

    pub fn applied(&self) -> u64 {
        self.applied
    }

    pub fn order(&self, id: OrderId) -> Option<&Order> {
        self.orders.get(&id)
    }

    pub fn order_count(&self) -> usize {
        self.orders.len()
    }

    /// Up to `max` orders with ids below `before` (all when `None`), newest first: a bounded slice of a scan that
    /// the caller continues after releasing the lock.
    pub fn orders_before(&self, before: Option<OrderId>, max: usize) -> impl Iterator<Item = &Order> {
        let upper = before.map_or(Bound::Unbounded, Bound::Excluded);
        self.orders.range((Bound::Unbounded, upper)).rev().take(max).map(|(_, o)| o)
    }

    pub fn by_client_id(&self, account: &AccountId, client_order_id: &str) -> Option<OrderId> {
        // The key is owned; this lookup only runs for requests that carry a client_order_id.
        self.by_client_id.get(&(account.clone(), client_order_id.to_string())).copied()
    }

    pub fn open_same_side(&self, symbol: Symbol, side: Side) -> Qty {
        self.open_qty.get(&(symbol, side)).copied().unwrap_or(Qty::ZERO)
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn open_orders(&self) -> impl Iterator<Item = &Order> {
        self.open.iter().filter_map(|id| self.orders.get(id))
    }

    pub fn count_by_status(&self) -> BTreeMap<OrderStatus, usize> {
        self.status_counts.iter().filter(|(_, n)| **n > 0).map(|(s, n)| (*s, *n)).collect()
    }

    pub fn positions(&self) -> &PositionBook {
        &self.positions
    }

    pub fn limits(&self) -> &RiskLimits {
        &self.limits
    }

    pub fn kill_switch(&self) -> &KillSwitchState {
        &self.kill_switch
    }

    /// Whether orders of `account` are blocked: the global switch or the account's own.
    pub fn blocked(&self, account: &AccountId) -> bool {
        self.blocking(account).is_some()
    }

    /// The switch that blocks `account`'s orders (the global one first), if any.
    pub fn blocking(&self, account: &AccountId) -> Option<&KillSwitchState> {
        if self.kill_switch.active {
            return Some(&self.kill_switch);
        }
        self.account_kill_switches.get(account).filter(|k| k.active)
    }

    pub fn account_kill_switches(&self) -> &BTreeMap<AccountId, KillSwitchState> {
        &self.account_kill_switches
    }

    pub fn account_positions(&self) -> &BTreeMap<AccountId, PositionBook> {
        &self.account_positions
    }

    pub fn next_id(&self) -> OrderId {
        self.next_id
    }

    pub fn session_date(&self) -> Option<NaiveDate> {
        self.session_date
    }

    pub fn loss_warned(&self) -> bool {
        self.loss_warned
    }

    pub fn last_price(&self, symbol: &str) -> Option<Price> {
        self.last_prices.get(symbol).copied()
    }

    pub fn refused_events(&self) -> (u64, u64) {
        (self.illegal_transitions, self.duplicate_fills)
    }

    pub fn audit_indexes(&self, id: OrderId) -> Option<&[u64]> {
        self.audit_index.get(&id).map(Vec::as_slice)
    }

    // ---- snapshots ----

    pub(crate) fn to_persisted(&self) -> Persisted {
        let mut audit_index: Vec<(OrderId, Vec<u64>)> =
            self.audit_index.iter().map(|(id, ix)| (*id, ix.clone())).collect();
        audit_index.sort_unstable_by_key(|(id, _)| *id);
        Persisted {
            applied: self.applied,
            orders: self.orders.values().cloned().collect(),
            positions: self.positions.clone(),
            limits: self.limits.clone(),
            kill_switch: self.kill_switch.clone(),
            next_id: self.next_id,
            session_date: self.session_date,
            loss_warned: self.loss_warned,
            account_positions: self.account_positions.clone(),
            account_kill_switches: self.account_kill_switches.clone(),
            illegal_transitions: self.illegal_transitions,
            duplicate_fills: self.duplicate_fills,
            audit_index,
        }
    }

    pub(crate) fn from_persisted(p: Persisted) -> OmsState {
        let mut st = OmsState {
            positions: p.positions,
            limits: p.limits,
            kill_switch: p.kill_switch,
            next_id: p.next_id,
            session_date: p.session_date,
            loss_warned: p.loss_warned,
            account_positions: p.account_positions,
            account_kill_switches: p.account_kill_switches,
            illegal_transitions: p.illegal_transitions,
            duplicate_fills: p.duplicate_fills,
            audit_index: p.audit_index.into_iter().collect(),
            applied: p.applied,
            ..OmsState::new()
        };
        for order in p.orders {
            st.insert_order(order);
        }
        // insert_order moves next_id forward; the persisted value is at least as far.
        st.next_id = st.next_id.max(p.next_id);
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::order::{Fill, OrderRequest, OrderType};

    fn record(entry: Entry) -> Record {
        Record { ts: DateTime::<Utc>::UNIX_EPOCH, actor: "t".into(), correlation_id: None, entry }
    }

    /// Two fills that each fit an order but together overflow the position: the second is refused before
    /// anything changes, so the order, its open quantity and the position still agree.
    #[test]
    fn a_fill_that_would_overflow_the_position_changes_nothing() {
        let instruments = Instruments::b3_defaults(NaiveDate::from_ymd_opt(2025, 11, 24).expect("a date"));
        let mut st = OmsState::new();
        let req = OrderRequest::new(
            Symbol::lit("PETR4"),
            Side::Buy,
            OrderType::Limit,
            Qty(100_000_000),
            Some(Price::from_units(50_000_000_000)),
        );
        for id in [1, 2] {
            let order = Order::new(id, &AccountId::new("t"), &req, DateTime::<Utc>::UNIX_EPOCH);
            st.apply(&record(Entry::OrderSubmitted { order }), &instruments);
            let fill = Fill {
                exec_id: format!("e{id}"),
                quantity: req.quantity,
                price: Price::from_units(50_000_000_000),
                ts: DateTime::<Utc>::UNIX_EPOCH,
            };
            let fx =
                st.apply(&record(Entry::OrderEvent { order_id: id, event: OrderEvent::Filled(fill) }), &instruments);
            if id == 1 {
                assert!(fx.fill && fx.illegal.is_none(), "{fx:?}");
            } else {
                assert!(!fx.fill && fx.illegal.as_deref().is_some_and(|m| m.contains("overflows")), "{fx:?}");
            }
        }
        let second = st.order(2).expect("order 2");
        assert_eq!((second.filled_quantity, second.status), (Qty::ZERO, OrderStatus::PendingNew));
        assert_eq!(st.positions().net_quantity("PETR4"), Qty(100_000_000));
        assert_eq!(
            st.open_same_side(Symbol::lit("PETR4"), Side::Buy),
            Qty(100_000_000),
            "order 2 is still open for all of it"
        );
        assert_eq!(st.refused_events().0, 1);
    }
}
