//! The Order Manager: the only writer of orders, positions, limits and the kill switch.
//!
//! Every command is decided under one lock (validation → risk → record), appended to the journal in that same
//! order, and acknowledged only once the journal has made it durable. Broker events come back on the adapter's
//! stream and go through the same path. See `ARCHITECTURE.md` for the flow of an order.

mod record;
pub mod routing;
mod service;
mod snapshot;
mod state;

pub use record::{AuditEntry, Entry, Record};
pub use service::{
    AccountPositions, Actor, Modify, OmsError, OmsOptions, OmsUpdate, OrderFilter, OrderManager, PositionsView,
    RecoveryReport, RiskStatus, Routed, SubmitOutcome,
};
pub use state::KillSwitchState;
