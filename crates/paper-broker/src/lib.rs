//! The paper broker: a simulated broker that behaves like a real one from the Order Manager's side.
//!
//! `submit` and `cancel` only enqueue ("accepted locally"); a task owned by the broker acknowledges, matches and
//! reports everything later as [`BrokerEvent`]s. Matching is against the simulated market's real book:
//! - marketable quantity takes liquidity level by level ([`SimMarket::execute`]), so a large order gets several
//!   fills at several prices (partial fills);
//! - resting limit quantity fills passively when the tape trades through its price, up to the printed size;
//! - STOP triggers when a trade prints at or beyond the stop (BUY at or above, SELL at or below) and then behaves
//!   as MARKET; STOP_LIMIT then behaves as LIMIT;
//! - IOC executes what it can and expires the rest; FOK executes everything at once or expires untouched;
//! - DAY orders expire when the session date changes; GTC orders stay.
//!
//! The broker's working orders live in memory; on restart the Order Manager hands back its open orders
//! ([`PaperBroker::start`]'s `restore`), standing in for the state a real broker keeps on its side.

use chrono::{DateTime, NaiveDate, Utc};
use clock::SharedClock;
use domain::broker::{Broker, BrokerConnection, BrokerError, BrokerEvent, BrokerOrderSnapshot, LinkState};
use domain::calendar::TradingCalendar;
use domain::order::{Fill, Order, OrderEvent, OrderId, OrderStatus, OrderType, Side, TimeInForce};
use domain::{Price, Qty, Symbol};
use market_sim::{MarketEvent, SimMarket, Trade, PAPER_AGENT};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Clone)]
struct Working {
    id: OrderId,
    broker_order_id: String,
    symbol: Symbol,
    side: Side,
    order_type: OrderType,
    quantity: Qty,
    filled: Qty,
    fills: u32,
    price: Option<Price>,
    stop_price: Option<Price>,
    tif: TimeInForce,
    triggered: bool,
    session: NaiveDate,
}

impl Working {
    fn leaves(&self) -> Qty {
        self.quantity - self.filled
    }

    /// The limit the order executes under right now: none for a market (or triggered stop-market) order.
    fn limit(&self) -> Option<Price> {
        match self.order_type {
            OrderType::Market | OrderType::Stop => None,
            OrderType::Limit | OrderType::StopLimit => self.price,
        }
    }

    fn is_waiting_for_trigger(&self) -> bool {
        self.order_type_needs_trigger() && !self.triggered
    }

    fn order_type_needs_trigger(&self) -> bool {
        matches!(self.order_type, OrderType::Stop | OrderType::StopLimit)
    }
}

enum Command {
    New(Box<Order>),
    Cancel(OrderId),
}

pub struct PaperBroker {
    commands: mpsc::UnboundedSender<Command>,
    state: Arc<Mutex<BTreeMap<OrderId, Working>>>,
}

struct Engine {
    market: SimMarket,
    clock: SharedClock,
    calendar: TradingCalendar,
    working: Arc<Mutex<BTreeMap<OrderId, Working>>>,
    events: mpsc::UnboundedSender<BrokerEvent>,
}

impl PaperBroker {
    /// Starts the broker task. `restore` are the open orders the Order Manager recovered: orders the broker had
    /// acknowledged resume working; orders still PENDING_NEW are processed as fresh submissions.
    ///
    /// The event channel is unbounded on purpose: losing or delaying a fill is worse than memory, and the Order
    /// Manager drains it continuously.
    pub fn start(
        market: SimMarket,
        calendar: TradingCalendar,
        restore: Vec<Order>,
        clock: SharedClock,
    ) -> (Arc<PaperBroker>, mpsc::UnboundedReceiver<BrokerEvent>) {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(BTreeMap::new()));
        let now = clock.now();
        let mut pending_new = Vec::new();
        {
            let mut w = state.lock();
            for o in restore {
                match (&o.broker_order_id, o.status) {
                    (_, s) if s.is_terminal() => {}
                    (Some(_), _) => {
                        let entry = working_from(&o, calendar.session_date(o.created_at));
                        w.insert(o.id, entry);
                        if o.status == OrderStatus::PendingCancel {
                            let _ = cmd_tx.send(Command::Cancel(o.id));
                        }
                    }
                    (None, _) => pending_new.push(o),
                }
            }
        }
        for o in pending_new {
            let _ = cmd_tx.send(Command::New(Box::new(o)));
        }
        let engine = Engine { market: market.clone(), clock, calendar, working: state.clone(), events: events_tx };
        let trades = market.subscribe();
        tokio::spawn(engine.run(cmd_rx, trades, now));
        (Arc::new(PaperBroker { commands: cmd_tx, state }), events_rx)
    }
}

fn working_from(o: &Order, session: NaiveDate) -> Working {
    Working {
        id: o.id,
        broker_order_id: o.broker_order_id.clone().unwrap_or_else(|| format!("PB-{}", o.id)),
        symbol: o.symbol,
        side: o.side,
        order_type: o.order_type,
        quantity: o.quantity,
        filled: o.filled_quantity,
        fills: o.fills.len() as u32,
        price: o.price,
        stop_price: o.stop_price,
        tif: o.time_in_force,
        // A restored stop that had partially filled must have triggered.
        triggered: o.filled_quantity.is_positive(),
        session,
    }
}

impl Broker for PaperBroker {
    fn name(&self) -> &'static str {
        "paper"
    }

    fn connection(&self) -> BrokerConnection {
        BrokerConnection {
            login: LinkState::Connected,
            routing: LinkState::Connected,
            market_data: LinkState::Connected,
        }
    }

    fn submit(&self, order: &Order) -> Result<(), BrokerError> {
        self.commands
            .send(Command::New(Box::new(order.clone())))
            .map_err(|_| BrokerError::RoutingDown("paper broker task stopped".into()))
    }

    fn cancel(&self, order_id: OrderId) -> Result<(), BrokerError> {
        self.commands
            .send(Command::Cancel(order_id))
            .map_err(|_| BrokerError::RoutingDown("paper broker task stopped".into()))
    }

    fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
        self.state
            .lock()
            .values()
            .map(|w| BrokerOrderSnapshot {
                order_id: w.id,
                broker_order_id: w.broker_order_id.clone(),
                filled_quantity: w.filled,
            })
            .collect()
    }
}

impl Engine {
    async fn run(
        self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut trades: broadcast::Receiver<MarketEvent>,
        started: DateTime<Utc>,
    ) {
        let mut session = self.calendar.session_date(started);
        let mut wake = tokio::time::interval(std::time::Duration::from_secs(1));
        wake.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(Command::New(order)) => self.on_new(*order, self.clock.now()),
                    Some(Command::Cancel(id)) => self.on_cancel(id, self.clock.now()),
                    None => return,
                },
                ev = trades.recv() => match ev {
                    Ok(MarketEvent::Trade(t)) => self.on_trade(&t),
                    Ok(MarketEvent::Book(_) | MarketEvent::BookUpdate(_)) => {}
                    // Missing some prints only delays passive fills (the next trade re-checks everything), but an
                    // operator must see that the simulation fell behind the tape.
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        metrics::counter!("ts_paper_broker_tape_lagged_total").increment(n);
                        tracing::warn!(skipped = n, "paper broker fell behind the tape");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = wake.tick() => {
                    let now = self.clock.now();
                    let today = self.calendar.session_date(now);
                    if today != session {
                        session = today;
                        self.expire_day_orders(today, now);
                    }
                }
            }
        }
    }

    fn emit(&self, order_id: OrderId, event: OrderEvent, ts: DateTime<Utc>) {
        let _ = self.events.send(BrokerEvent { order_id, event, ts });
    }

    fn on_new(&self, order: Order, now: DateTime<Utc>) {
        let mut w = working_from(&order, self.calendar.session_date(now));
        w.filled = Qty::ZERO;
        w.fills = 0;
        w.triggered = false;
        if self.market.instruments().get(&order.symbol).is_none() {
            self.emit(
                order.id,
                OrderEvent::Rejected {
                    code: "UNKNOWN_SYMBOL".into(),
                    reason: format!("{} is not traded here", order.symbol),
                },
                now,
            );
            return;
        }
        self.emit(order.id, OrderEvent::Accepted { broker_order_id: w.broker_order_id.clone() }, now);
        if w.tif == TimeInForce::Fok {
            let available = self.market.available(&w.symbol, w.side, w.limit());
            if w.is_waiting_for_trigger() || available < w.quantity {
                self.emit(
                    w.id,
                    OrderEvent::Expired { reason: "FOK: not enough liquidity to fill at once".into() },
                    now,
                );
                return;
            }
        }
        if !w.is_waiting_for_trigger() {
            self.execute_aggressive(&mut w, now);
        }
        self.rest_or_finish(w, now);
    }

    /// After an aggressive pass: IOC/FOK remainders expire, filled orders leave, the rest works.
    fn rest_or_finish(&self, w: Working, now: DateTime<Utc>) {
        if w.leaves().is_zero() {
            return;
        }
        let immediate = matches!(w.tif, TimeInForce::Ioc | TimeInForce::Fok);
        if immediate && !w.is_waiting_for_trigger() {
            self.emit(
                w.id,
                OrderEvent::Expired { reason: format!("{:?}: unfilled remainder {}", w.tif, w.leaves()) },
                now,
            );
            return;
        }
        if w.limit().is_none() && !w.is_waiting_for_trigger() {
            // A market order that found no more liquidity: B3 cancels the remainder rather than leaving it priced at
            // anything.
            self.emit(
                w.id,
                OrderEvent::Expired { reason: format!("MARKET: no liquidity for the remainder {}", w.leaves()) },
                now,
            );
            return;
        }
        self.working.lock().insert(w.id, w);
    }

    fn fill(&self, w: &mut Working, price: Price, qty: Qty, now: DateTime<Utc>) {
        w.fills += 1;
        w.filled += qty;
        let exec_id = format!("{}-{}", w.broker_order_id, w.fills);
        self.emit(w.id, OrderEvent::Filled(Fill { exec_id, quantity: qty, price, ts: now }), now);
    }

    fn execute_aggressive(&self, w: &mut Working, now: DateTime<Utc>) {
        let pieces = self.market.execute(&w.symbol, w.side, w.leaves(), w.limit(), now);
        for (price, qty) in pieces {
            self.fill(w, price, qty, now);
        }
    }

    fn on_cancel(&self, id: OrderId, now: DateTime<Utc>) {
        let removed = self.working.lock().remove(&id);
        match removed {
            Some(_) => self.emit(id, OrderEvent::Canceled { reason: "canceled on request".into() }, now),
            None => self.emit(
                id,
                OrderEvent::CancelRejected {
                    reason: "order is not working at the broker (already filled, expired or unknown)".into(),
                },
                now,
            ),
        }
    }

    fn on_trade(&self, t: &Trade) {
        let now = t.receive_ts;
        let candidates: Vec<OrderId> = {
            let w = self.working.lock();
            w.values().filter(|o| o.symbol == t.symbol.as_str()).map(|o| o.id).collect()
        };
        for id in candidates {
            let Some(mut w) = self.working.lock().remove(&id) else {
                continue;
            };
            if w.is_waiting_for_trigger() {
                let hit = match (w.side, w.stop_price) {
                    (Side::Buy, Some(s)) => t.price >= s,
                    (Side::Sell, Some(s)) => t.price <= s,
                    _ => false,
                };
                if !hit {
                    self.working.lock().insert(id, w);
                    continue;
                }
                w.triggered = true;
                self.execute_aggressive(&mut w, now);
                self.rest_or_finish(w, now);
                continue;
            }
            // Our own prints say nothing about other participants' interest at our price.
            let ours = t.buyer_agent == PAPER_AGENT || t.seller_agent == PAPER_AGENT;
            if let (Some(limit), false) = (w.limit(), ours) {
                // The opposite side moved through our price: take what crosses.
                self.execute_aggressive(&mut w, now);
                // Someone traded at a price worse than ours with the aggressor on the other side: our resting
                // order was ahead of them.
                let through = match w.side {
                    Side::Buy => t.price < limit,
                    Side::Sell => t.price > limit,
                };
                if through && w.leaves().is_positive() {
                    let q = w.leaves().min(t.quantity);
                    self.fill(&mut w, limit, q, now);
                }
            }
            if w.leaves().is_positive() {
                self.working.lock().insert(id, w);
            }
        }
    }

    fn expire_day_orders(&self, today: NaiveDate, now: DateTime<Utc>) {
        let expired: Vec<OrderId> = {
            let mut w = self.working.lock();
            let ids: Vec<OrderId> =
                w.values().filter(|o| o.tif == TimeInForce::Day && o.session < today).map(|o| o.id).collect();
            for id in &ids {
                w.remove(id);
            }
            ids
        };
        for id in expired {
            self.emit(id, OrderEvent::Expired { reason: "DAY order: session ended".into() }, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::order::{OrderRequest, PositionType};
    use domain::Instruments;
    use market_sim::SimConfig;
    use std::time::Duration;

    fn setup() -> (SimMarket, Arc<PaperBroker>, mpsc::UnboundedReceiver<BrokerEvent>) {
        let ins = Instruments::b3_defaults(Utc::now().date_naive());
        let market = SimMarket::new(ins, SimConfig { seed: 5, trades_per_second: 50.0 });
        market.warm_up(Utc::now());
        let (b, rx) =
            PaperBroker::start(market.clone(), TradingCalendar::Continuous, Vec::new(), clock::WallClock::shared());
        (market, b, rx)
    }

    fn order(
        id: OrderId,
        side: Side,
        t: OrderType,
        qty: Qty,
        price: Option<Price>,
        stop: Option<Price>,
        tif: TimeInForce,
    ) -> Order {
        let req = OrderRequest {
            symbol: domain::Symbol::lit("PETR4"),
            side,
            order_type: t,
            quantity: qty,
            price,
            stop_price: stop,
            time_in_force: tif,
            client_order_id: None,
            position_type: PositionType::Daytrade,
            justification: None,
            source: None,
        };
        Order::new(id, &domain::AccountId::new("t"), &req, Utc::now())
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<BrokerEvent>) -> OrderEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("event in time")
            .expect("channel open")
            .event
    }

    /// Applies events to a copy of the order until it is terminal or quiet.
    async fn drive(o: &mut Order, rx: &mut mpsc::UnboundedReceiver<BrokerEvent>) {
        while !o.status.is_terminal() {
            match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                Ok(Some(ev)) => {
                    o.apply(&ev.event, ev.ts).expect("broker events are legal");
                }
                _ => break,
            }
        }
    }

    #[tokio::test]
    async fn market_order_walks_the_book_with_partial_fills() {
        let (market, broker, mut rx) = setup();
        let book = market.book("PETR4", 3, Utc::now()).unwrap();
        let qty = book.asks[0].quantity + book.asks[1].quantity;
        let mut o = order(1, Side::Buy, OrderType::Market, qty, None, None, TimeInForce::Day);
        broker.submit(&o).unwrap();
        drive(&mut o, &mut rx).await;
        assert_eq!(o.status, OrderStatus::Filled);
        assert_eq!(o.fills.len(), 2);
        assert_eq!(o.fills[0].price, book.asks[0].price);
        assert_eq!(o.fills[1].price, book.asks[1].price);
    }

    #[tokio::test]
    async fn ioc_expires_the_remainder_and_fok_is_all_or_nothing() {
        let (market, broker, mut rx) = setup();
        let book = market.book("PETR4", 1, Utc::now()).unwrap();
        let best = book.asks[0];
        let mut ioc =
            order(1, Side::Buy, OrderType::Limit, best.quantity + Qty(100), Some(best.price), None, TimeInForce::Ioc);
        broker.submit(&ioc).unwrap();
        drive(&mut ioc, &mut rx).await;
        assert_eq!(ioc.status, OrderStatus::Expired);
        assert_eq!(ioc.filled_quantity, best.quantity);

        let ask = market.book("PETR4", 1, Utc::now()).unwrap().asks[0];
        let mut fok =
            order(2, Side::Buy, OrderType::Limit, ask.quantity + Qty(100), Some(ask.price), None, TimeInForce::Fok);
        broker.submit(&fok).unwrap();
        drive(&mut fok, &mut rx).await;
        assert_eq!(fok.status, OrderStatus::Expired);
        assert_eq!(fok.filled_quantity, Qty::ZERO);
    }

    #[tokio::test]
    async fn resting_limit_cancel_and_cancel_reject() {
        let (market, broker, mut rx) = setup();
        let bid = market.book("PETR4", 10, Utc::now()).unwrap().bids[9].price;
        let mut o =
            order(1, Side::Buy, OrderType::Limit, Qty(100), Some(Price(bid.units() - 500)), None, TimeInForce::Gtc);
        broker.submit(&o).unwrap();
        assert!(matches!(next(&mut rx).await, OrderEvent::Accepted { .. }));
        o.apply(&OrderEvent::Accepted { broker_order_id: "PB-1".into() }, Utc::now()).unwrap();
        assert_eq!(broker.working_orders().len(), 1);
        broker.cancel(1).unwrap();
        assert!(matches!(next(&mut rx).await, OrderEvent::Canceled { .. }));
        broker.cancel(1).unwrap();
        assert!(matches!(next(&mut rx).await, OrderEvent::CancelRejected { .. }));
        assert!(broker.working_orders().is_empty());
    }

    #[tokio::test]
    async fn stop_triggers_on_a_trade_through_its_price() {
        let (market, broker, mut rx) = setup();
        let last = market.last_price("PETR4").unwrap();
        let stop = Price(last.units() + 100);
        let mut o = order(1, Side::Buy, OrderType::Stop, Qty(100), None, Some(stop), TimeInForce::Day);
        broker.submit(&o).unwrap();
        drive(&mut o, &mut rx).await;
        assert_eq!(o.status, OrderStatus::New, "not triggered yet");
        // Buy up the book until the tape prints at or above the stop.
        let now = Utc::now();
        for _ in 0..50 {
            if market.last_price("PETR4").unwrap() >= stop {
                break;
            }
            market.execute("PETR4", Side::Buy, Qty(100), None, now);
        }
        // Our own prints do trigger stops (the tape is the tape); let the engine see them.
        market.step("PETR4", Utc::now());
        drive(&mut o, &mut rx).await;
        assert_eq!(o.status, OrderStatus::Filled);
        assert!(o.fills[0].price >= stop);
    }

    #[tokio::test]
    async fn restored_orders_keep_working() {
        let ins = Instruments::b3_defaults(Utc::now().date_naive());
        let market = SimMarket::new(ins, SimConfig::default());
        market.warm_up(Utc::now());
        let mut resting =
            order(7, Side::Sell, OrderType::Limit, Qty(100), Some(Price(999_900)), None, TimeInForce::Gtc);
        resting.apply(&OrderEvent::Accepted { broker_order_id: "PB-7".into() }, Utc::now()).unwrap();
        let fresh = order(8, Side::Sell, OrderType::Limit, Qty(100), Some(Price(999_800)), None, TimeInForce::Gtc);
        let (broker, mut rx) =
            PaperBroker::start(market, TradingCalendar::Continuous, vec![resting, fresh], clock::WallClock::shared());
        // The PENDING_NEW one is processed as a new submission.
        let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        assert_eq!(ev.order_id, 8);
        assert!(matches!(ev.event, OrderEvent::Accepted { .. }));
        let mut ids: Vec<_> = broker.working_orders().into_iter().map(|w| w.order_id).collect();
        ids.sort();
        assert_eq!(ids, vec![7, 8]);
    }
}
