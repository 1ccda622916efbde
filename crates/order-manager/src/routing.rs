//! Several brokers behind the one the Order Manager holds: each order goes to the broker that serves its account.
//!
//! Every account is served by at most one broker; a broker listed with the account `*` serves the accounts no other
//! broker names. An order whose account no broker serves is refused before it is journaled (`routable`). Each
//! broker's events reach the Order Manager on one merged stream, in each broker's own order.

use domain::broker::{Broker, BrokerConnection, BrokerError, BrokerEvent, BrokerOrderSnapshot, LinkState};
use domain::order::{Amendment, Order, OrderId};
use domain::AccountId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The account that stands for "every account no other broker serves".
pub const ANY_ACCOUNT: &str = "*";

/// One broker and the accounts it serves.
pub struct Route {
    pub name: String,
    pub kind: String,
    pub accounts: Vec<String>,
    pub broker: Arc<dyn Broker>,
}

/// Which route serves each account, and the route for `*`, from (name, accounts) pairs in order; refuses
/// duplicate names, a route with no account, an account served twice and two routes for `*`.
pub fn plan<'a>(
    routes: impl Iterator<Item = (&'a str, &'a [String])>,
) -> Result<(HashMap<AccountId, usize>, Option<usize>), String> {
    let mut names: Vec<&str> = Vec::new();
    let mut by_account = HashMap::new();
    let mut default = None;
    for (i, (name, accounts)) in routes.enumerate() {
        if names.contains(&name) {
            return Err(format!("two brokers are named {name:?}"));
        }
        names.push(name);
        if accounts.is_empty() {
            return Err(format!("broker {name:?} serves no account (list them, or \"*\" for all others)"));
        }
        for a in accounts {
            if a == ANY_ACCOUNT {
                if let Some(d) = default {
                    return Err(format!("brokers {:?} and {name:?} both serve \"*\"", names[d]));
                }
                default = Some(i);
            } else if let Some(prev) = by_account.insert(AccountId::new(a), i) {
                return Err(format!("account {a:?} is served by both {:?} and {name:?}", names[prev]));
            }
        }
    }
    if names.is_empty() {
        return Err("no broker configured".into());
    }
    Ok((by_account, default))
}

pub struct BrokerRouter {
    routes: Vec<Route>,
    by_account: HashMap<AccountId, usize>,
    default: Option<usize>,
    /// Which route took each order, for its cancels and modifies.
    orders: Mutex<HashMap<OrderId, usize>>,
}

impl BrokerRouter {
    /// Checks that names are unique, that no account is served twice and that at most one route takes `*`.
    pub fn new(routes: Vec<Route>) -> Result<BrokerRouter, String> {
        let (by_account, default) = plan(routes.iter().map(|r| (r.name.as_str(), r.accounts.as_slice())))?;
        Ok(BrokerRouter { routes, by_account, default, orders: Mutex::new(HashMap::new()) })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    fn route_of(&self, account: &AccountId) -> Option<usize> {
        self.by_account.get(account).copied().or(self.default)
    }

    /// The route for an order already sent (or restored after a restart).
    fn route_of_order(&self, id: OrderId) -> Option<usize> {
        self.orders.lock().get(&id).copied()
    }

    /// Remembers which broker holds each of `orders` (the open orders recovered at start).
    pub fn restore(&self, orders: &[Order]) {
        let mut map = self.orders.lock();
        for o in orders {
            if let Some(i) = self.route_of(&o.account) {
                map.insert(o.id, i);
            }
        }
    }

    /// One stream of every broker's events, each broker's in its own order.
    pub fn merge(streams: Vec<mpsc::UnboundedReceiver<BrokerEvent>>) -> mpsc::UnboundedReceiver<BrokerEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        for mut stream in streams {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(ev) = stream.recv().await {
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
            });
        }
        rx
    }

    fn route(&self, i: usize) -> &Route {
        &self.routes[i]
    }
}

impl Broker for BrokerRouter {
    fn name(&self) -> &'static str {
        "router"
    }

    /// The desk's view: routing is up when every broker can route, degraded when only some can.
    fn connection(&self) -> BrokerConnection {
        let states: Vec<BrokerConnection> = self.routes.iter().map(|r| r.broker.connection()).collect();
        let merge = |f: fn(&BrokerConnection) -> LinkState| {
            let up = states.iter().filter(|c| f(c) == LinkState::Connected).count();
            if up == states.len() {
                LinkState::Connected
            } else if up > 0 {
                LinkState::Degraded
            } else {
                states.first().map_or(LinkState::Disconnected, f)
            }
        };
        BrokerConnection {
            login: merge(|c| c.login),
            routing: merge(|c| c.routing),
            market_data: merge(|c| c.market_data),
        }
    }

    fn routable(&self, account: &AccountId) -> Result<(), BrokerError> {
        let Some(i) = self.route_of(account) else {
            return Err(BrokerError::Refused(format!("no broker serves account {account}")));
        };
        let r = self.route(i);
        if r.broker.connection().can_route() {
            Ok(())
        } else {
            Err(BrokerError::RoutingDown(format!("broker {} (account {account}) is not connected", r.name)))
        }
    }

    fn submit(&self, order: &Order) -> Result<(), BrokerError> {
        let Some(i) = self.route_of(&order.account) else {
            return Err(BrokerError::Refused(format!("no broker serves account {}", order.account)));
        };
        self.orders.lock().insert(order.id, i);
        self.route(i).broker.submit(order)
    }

    fn cancel(&self, order_id: OrderId) -> Result<(), BrokerError> {
        let i = self.route_of_order(order_id).ok_or(BrokerError::UnknownOrder(order_id))?;
        self.route(i).broker.cancel(order_id)
    }

    fn replace(&self, order: &Order, amendment: &Amendment) -> Result<(), BrokerError> {
        let i = self.route_of_order(order.id).ok_or(BrokerError::UnknownOrder(order.id))?;
        self.route(i).broker.replace(order, amendment)
    }

    fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
        self.routes.iter().flat_map(|r| r.broker.working_orders()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str, LinkState);

    impl Broker for Named {
        fn name(&self) -> &'static str {
            self.0
        }
        fn connection(&self) -> BrokerConnection {
            BrokerConnection { login: self.1, routing: self.1, market_data: self.1 }
        }
        fn submit(&self, _: &Order) -> Result<(), BrokerError> {
            Err(BrokerError::Refused(self.0.into()))
        }
        fn cancel(&self, _: OrderId) -> Result<(), BrokerError> {
            Err(BrokerError::Refused(self.0.into()))
        }
        fn replace(&self, _: &Order, _: &Amendment) -> Result<(), BrokerError> {
            Err(BrokerError::Refused(self.0.into()))
        }
        fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
            Vec::new()
        }
    }

    fn route(name: &'static str, state: LinkState, accounts: &[&str]) -> Route {
        Route {
            name: name.into(),
            kind: "test".into(),
            accounts: accounts.iter().map(|a| a.to_string()).collect(),
            broker: Arc::new(Named(name, state)),
        }
    }

    #[test]
    fn accounts_pick_their_broker_and_the_star_takes_the_rest() {
        let r = BrokerRouter::new(vec![
            route("paper", LinkState::Connected, &["*"]),
            route("dma", LinkState::Disconnected, &["desk1"]),
        ])
        .unwrap();
        assert_eq!(r.routable(&AccountId::new("alice")), Ok(()));
        assert!(matches!(r.routable(&AccountId::new("desk1")), Err(BrokerError::RoutingDown(m)) if m.contains("dma")));
        assert_eq!(r.connection().routing, LinkState::Degraded);
        let order = |account: &str| {
            let req = domain::OrderRequest::new(
                domain::Symbol::lit("PETR4"),
                domain::Side::Buy,
                domain::OrderType::Market,
                domain::Qty(100),
                None,
            );
            Order::new(7, &AccountId::new(account), &req, chrono::DateTime::UNIX_EPOCH)
        };
        assert_eq!(r.submit(&order("desk1")), Err(BrokerError::Refused("dma".into())));
        assert_eq!(r.cancel(7), Err(BrokerError::Refused("dma".into())), "the cancel follows the order");
        assert_eq!(r.cancel(8), Err(BrokerError::UnknownOrder(8)));
    }

    #[test]
    fn configurations_that_cannot_route_are_refused() {
        let no_star = BrokerRouter::new(vec![route("dma", LinkState::Connected, &["desk1"])]).unwrap();
        assert!(matches!(no_star.routable(&AccountId::new("bob")), Err(BrokerError::Refused(_))));
        let twice = BrokerRouter::new(vec![
            route("a", LinkState::Connected, &["desk1"]),
            route("b", LinkState::Connected, &["desk1"]),
        ]);
        assert!(twice.is_err_and(|e| e.contains("desk1")));
        let stars =
            BrokerRouter::new(vec![route("a", LinkState::Connected, &["*"]), route("b", LinkState::Connected, &["*"])]);
        assert!(stars.is_err());
        let same =
            BrokerRouter::new(vec![route("a", LinkState::Connected, &["x"]), route("a", LinkState::Connected, &["y"])]);
        assert!(same.is_err());
        assert!(BrokerRouter::new(vec![route("a", LinkState::Connected, &[])]).is_err());
    }
}
