//! The port every broker adapter implements (paper, FIX, a future ProfitDLL bridge).
//!
//! The semantics follow the broker DLL: a request only says "accepted locally" or fails at once; everything that
//! happens afterwards (acknowledgement, fills, cancels, expiry, rejects) arrives later as [`BrokerEvent`]s on the
//! adapter's event stream, which the adapter hands over at construction.

use crate::account::AccountId;
use crate::order::{Amendment, Order, OrderEvent, OrderId};
use crate::quantity::Qty;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEvent {
    /// Our order id (the adapter keeps the mapping from its own ids).
    pub order_id: OrderId,
    pub event: OrderEvent,
    pub ts: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum BrokerError {
    #[error("order routing is down: {0}")]
    RoutingDown(String),
    #[error("the broker does not know order {0}")]
    UnknownOrder(OrderId),
    #[error("refused by the adapter: {0}")]
    Refused(String),
}

/// Connection state per dimension, as the broker DLL reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LinkState {
    Connecting,
    Connected,
    Degraded,
    Disconnected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrokerConnection {
    pub login: LinkState,
    pub routing: LinkState,
    pub market_data: LinkState,
}

impl BrokerConnection {
    pub fn can_route(&self) -> bool {
        self.routing == LinkState::Connected
    }
}

/// What the broker says about one of its working orders, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerOrderSnapshot {
    pub order_id: OrderId,
    pub broker_order_id: String,
    pub filled_quantity: Qty,
}

pub trait Broker: Send + Sync {
    fn name(&self) -> &'static str;

    fn connection(&self) -> BrokerConnection;

    /// Whether an order of `account` can be routed now: a broker behind a router answers for the account's own
    /// connection.
    fn routable(&self, account: &AccountId) -> Result<(), BrokerError> {
        let _ = account;
        if self.connection().can_route() {
            Ok(())
        } else {
            Err(BrokerError::RoutingDown(format!("{} is not connected", self.name())))
        }
    }

    /// Hands an order to the broker. `Ok` means only "accepted locally".
    fn submit(&self, order: &Order) -> Result<(), BrokerError>;

    /// Asks the broker to cancel; the outcome arrives as an event.
    fn cancel(&self, order_id: OrderId) -> Result<(), BrokerError>;

    /// Asks the broker to work `order` on the terms `amendment` instead; the outcome arrives as `Replaced` or
    /// `ReplaceRejected`.
    fn replace(&self, order: &Order, amendment: &Amendment) -> Result<(), BrokerError>;

    /// The orders the broker is working, to reconcile after a restart or reconnect.
    fn working_orders(&self) -> Vec<BrokerOrderSnapshot>;
}
