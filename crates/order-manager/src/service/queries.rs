//! Reads. None walks every order while holding the lock that commands and broker events need: listings scan in
//! bounded slices, releasing the lock between them, and counts are kept as the state changes.

use super::{OmsError, OrderManager};
use crate::record::{AuditEntry, Record};
use crate::state::KillSwitchState;
use chrono::{DateTime, Utc};
use domain::order::{Order, OrderId, OrderStatus, Side};
use domain::risk::{loss_level, LossLevel, RiskLimits, TradingState};
use domain::{AccountId, Money, Position, Price};
use serde::Serialize;
use std::collections::BTreeMap;

/// Orders examined per hold of the lock by a listing: small enough that a submit waits microseconds, not the
/// length of a scan.
const SCAN_SLICE: usize = 2048;

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

impl OrderFilter {
    fn matches(&self, o: &Order) -> bool {
        self.status.as_ref().is_none_or(|s| s.contains(&o.status))
            && self.symbol.as_ref().is_none_or(|s| o.symbol.as_str() == s)
            && self.side.is_none_or(|s| o.side == s)
            && self.from.is_none_or(|t| o.created_at >= t)
            && self.to.is_none_or(|t| o.created_at <= t)
    }

    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.symbol.is_none()
            && self.side.is_none()
            && self.from.is_none()
            && self.to.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
/// Totals are `None` (JSON null) only when they do not fit the books: never clipped to a wrong number.
pub struct PositionsView {
    pub positions: Vec<Position>,
    pub realized_today: Option<Money>,
    pub unrealized: Option<Money>,
    pub daily_pnl: Option<Money>,
    pub exposure: Option<Money>,
    /// The same, per account (the desk's figures above are their sum).
    pub accounts: Vec<AccountPositions>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountPositions {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub account: AccountId,
    pub positions: Vec<Position>,
    pub realized_today: Option<Money>,
    pub unrealized: Option<Money>,
    pub daily_pnl: Option<Money>,
    pub exposure: Option<Money>,
    /// This account's own kill switch is on (the global one blocks every account).
    pub kill_switch_active: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskStatus {
    pub kill_switch: KillSwitchState,
    /// Accounts whose own kill switch is on.
    pub account_kill_switches: Vec<KillSwitchState>,
    pub trading_state: TradingState,
    pub market_open: bool,
    /// `None` (JSON null) only when the figure does not fit the books; the loss level is then BREACHED.
    pub daily_pnl: Option<Money>,
    pub realized_today: Option<Money>,
    pub unrealized: Option<Money>,
    pub daily_loss_limit: Money,
    pub loss_level: LossLevel,
    pub exposure: Option<Money>,
    pub open_orders: usize,
    pub session_date: Option<chrono::NaiveDate>,
    pub broker_can_route: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecoveryReport {
    /// Records in the journal.
    pub records: u64,
    /// Records the snapshot recovery started from covers (0: none).
    pub snapshot_records: u64,
    /// Records decoded and applied after the snapshot.
    pub replayed_records: u64,
    pub undecodable_records: u64,
    pub truncated_bytes: u64,
    pub orders: usize,
    pub open_orders: usize,
    pub kill_switch_active: bool,
}

impl OrderManager {
    pub fn get(&self, id: OrderId) -> Option<Order> {
        self.lock().state.order(id).cloned()
    }

    /// A page of orders, newest first, and how many match. Without a filter the page costs `offset + limit`
    /// steps; with one, the scan runs in slices of [`SCAN_SLICE`] orders, the lock released between them (an order
    /// changing meanwhile is seen in one of its states, never half-changed).
    pub fn list(&self, f: &OrderFilter) -> (Vec<Order>, usize) {
        if f.is_empty() {
            let desk = self.lock();
            let page = desk.state.orders_before(None, f.offset.saturating_add(f.limit)).skip(f.offset).cloned();
            return (page.collect(), desk.state.order_count());
        }
        let (mut total, mut page, mut cursor) = (0, Vec::new(), None);
        loop {
            let desk = self.lock();
            let mut seen = 0;
            for o in desk.state.orders_before(cursor, SCAN_SLICE) {
                seen += 1;
                cursor = Some(o.id);
                if f.matches(o) {
                    if total >= f.offset && page.len() < f.limit {
                        page.push(o.clone());
                    }
                    total += 1;
                }
            }
            if seen < SCAN_SLICE {
                return (page, total);
            }
        }
    }

    pub fn open_orders(&self) -> Vec<Order> {
        self.lock().state.open_orders().cloned().collect()
    }

    pub fn positions(&self) -> PositionsView {
        let desk = self.lock();
        let book = desk.state.positions();
        let st = &desk.state;
        let accounts = st
            .account_positions()
            .iter()
            .map(|(account, b)| AccountPositions {
                account: account.clone(),
                positions: b.iter().cloned().collect(),
                realized_today: b.realized_today(),
                unrealized: b.unrealized(),
                daily_pnl: b.daily_pnl(),
                exposure: b.exposure(),
                kill_switch_active: st.account_kill_switches().get(account).is_some_and(|k| k.active),
            })
            .collect();
        PositionsView {
            positions: book.iter().cloned().collect(),
            realized_today: book.realized_today(),
            unrealized: book.unrealized(),
            daily_pnl: book.daily_pnl(),
            exposure: book.exposure(),
            accounts,
        }
    }

    pub fn limits(&self) -> RiskLimits {
        self.lock().state.limits().clone()
    }

    pub fn kill_switch(&self) -> KillSwitchState {
        self.lock().state.kill_switch().clone()
    }

    pub fn last_price(&self, symbol: &str) -> Option<Price> {
        self.lock().state.last_price(symbol)
    }

    pub fn risk_status(&self) -> RiskStatus {
        let broker_can_route = self.inner.broker.get().is_some_and(|b| b.connection().can_route());
        let now = self.now();
        let desk = self.lock();
        let (st, book) = (&desk.state, desk.state.positions());
        let daily_pnl = book.daily_pnl();
        RiskStatus {
            kill_switch: st.kill_switch().clone(),
            account_kill_switches: st.account_kill_switches().values().filter(|k| k.active).cloned().collect(),
            trading_state: st.limits().trading_state,
            market_open: self.inner.calendar.is_open(now),
            daily_pnl,
            realized_today: book.realized_today(),
            unrealized: book.unrealized(),
            daily_loss_limit: st.limits().daily_loss_limit,
            loss_level: loss_level(daily_pnl, st.limits().daily_loss_limit),
            exposure: book.exposure(),
            open_orders: st.open_count(),
            session_date: st.session_date(),
            broker_can_route,
        }
    }

    /// Orders per status, kept as orders change (for `/metrics`).
    pub fn order_counts(&self) -> BTreeMap<OrderStatus, usize> {
        self.lock().state.count_by_status()
    }

    pub fn broker_connection(&self) -> Option<domain::broker::BrokerConnection> {
        self.inner.broker.get().map(|b| b.connection())
    }

    /// Broker events refused so far: (illegal transitions, duplicate fills). They change nothing but are counted,
    /// so a caller can tell that an event was processed and refused.
    pub fn refused_events(&self) -> (u64, u64) {
        self.lock().state.refused_events()
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
                let mut indexes = self.lock().state.audit_indexes(id).map(<[u64]>::to_vec).unwrap_or_default();
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

    /// Everything that recovery must restore, as JSON: orders (with fills), positions, limits, the kill switch.
    /// For tests and tools: it walks every order under the lock.
    pub fn durable_state(&self) -> serde_json::Value {
        let desk = self.lock();
        let st = &desk.state;
        serde_json::json!({
            "orders": st.orders_before(None, usize::MAX).collect::<Vec<_>>(),
            "positions": st.positions().iter().map(|p| (p.symbol, p.quantity, p.cost, p.realized_today, p.realized_total)).collect::<Vec<_>>(),
            "limits": st.limits(),
            "kill_switch": st.kill_switch(),
            "account_kill_switches": st.account_kill_switches(),
            "account_positions": st.account_positions().iter().map(|(a, b)| (a, b.iter().map(|p| (p.symbol, p.quantity, p.cost, p.realized_today, p.realized_total)).collect::<Vec<_>>())).collect::<Vec<_>>(),
            "session_date": st.session_date(),
            "next_id": st.next_id(),
        })
    }
}
