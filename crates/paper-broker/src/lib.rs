//! The paper broker: a simulated broker that behaves like a real one from the Order Manager's side.
//!
//! `submit` and `cancel` match on the caller's thread (an order meets the market as it is when it is sent, with no
//! task hand-off), and everything the broker decides reaches the Order Manager as [`BrokerEvent`]s on its channel;
//! a task owned by the broker handles the tape (passive fills, stops) and the clock (DAY expiry). The rules (book walk with partial fills, passive fills when the
//! tape trades through, stops, IOC/FOK, DAY expiry) are [`matching::Matcher`]'s, which a backtest's venue runs too;
//! live, its liquidity is the simulated market's real book ([`SimMarket::execute`]), which an order depletes.
//!
//! The broker's working orders live in memory; on restart the Order Manager hands back its open orders
//! ([`PaperBroker::start`]'s `restore`), standing in for the state a real broker keeps on its side.

pub mod matching;

use chrono::{DateTime, Utc};
use clock::SharedClock;
use domain::broker::{Broker, BrokerConnection, BrokerError, BrokerEvent, BrokerOrderSnapshot, LinkState};
use domain::calendar::TradingCalendar;
use domain::order::{Amendment, Order, OrderId, OrderStatus, Side};
use domain::{Price, Qty, Symbol};
use market_sim::{MarketEvent, SimMarket, PAPER_AGENT};
use matching::{Liquidity, Matcher, Print};
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

enum Command {
    New(Box<Order>),
    Cancel(OrderId),
}

pub struct PaperBroker {
    commands: mpsc::UnboundedSender<Command>,
    matcher: Arc<Mutex<Matcher>>,
    market: SimMarket,
    clock: SharedClock,
    events: mpsc::UnboundedSender<BrokerEvent>,
}

/// Sends what the matcher decided, while its lock is still held: events leave in the order the matcher made them,
/// whichever thread (a caller's submit, the tape task) made them.
fn send_all(events: &mpsc::UnboundedSender<BrokerEvent>, out: &mut Vec<BrokerEvent>) {
    for ev in out.drain(..) {
        let _ = events.send(ev);
    }
}

/// The simulated market is the live paper broker's liquidity: what an order takes leaves its book.
impl Liquidity for SimMarket {
    fn knows(&self, symbol: &Symbol) -> bool {
        self.instruments().get(symbol).is_some()
    }

    fn execute(
        &mut self,
        symbol: &Symbol,
        side: Side,
        qty: Qty,
        limit: Option<Price>,
        now: DateTime<Utc>,
    ) -> Vec<(Price, Qty)> {
        SimMarket::execute(self, symbol, side, qty, limit, now)
    }

    fn available(&self, symbol: &Symbol, side: Side, limit: Option<Price>) -> Qty {
        SimMarket::available(self, symbol, side, limit)
    }
}

struct Engine {
    market: SimMarket,
    clock: SharedClock,
    matcher: Arc<Mutex<Matcher>>,
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
        let mut matcher = Matcher::new(calendar, clock.now());
        let mut pending_new = Vec::new();
        for o in restore {
            match (&o.broker_order_id, o.status) {
                (_, s) if s.is_terminal() => {}
                (Some(_), _) => {
                    matcher.restore(&o);
                    if o.status == OrderStatus::PendingCancel {
                        let _ = cmd_tx.send(Command::Cancel(o.id));
                    }
                }
                (None, _) => pending_new.push(o),
            }
        }
        for o in pending_new {
            let _ = cmd_tx.send(Command::New(Box::new(o)));
        }
        let matcher = Arc::new(Mutex::new(matcher));
        let engine = Engine {
            market: market.clone(),
            clock: clock.clone(),
            matcher: matcher.clone(),
            events: events_tx.clone(),
        };
        let trades = market.subscribe();
        tokio::spawn(engine.run(cmd_rx, trades));
        (Arc::new(PaperBroker { commands: cmd_tx, matcher, market, clock, events: events_tx }), events_rx)
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
        if self.events.is_closed() || self.commands.is_closed() {
            return Err(BrokerError::RoutingDown("paper broker stopped".into()));
        }
        let mut out = Vec::new();
        let mut m = self.matcher.lock();
        m.on_new(order, &mut self.market.clone(), self.clock.now(), &mut out);
        send_all(&self.events, &mut out);
        Ok(())
    }

    fn cancel(&self, order_id: OrderId) -> Result<(), BrokerError> {
        if self.events.is_closed() || self.commands.is_closed() {
            return Err(BrokerError::RoutingDown("paper broker stopped".into()));
        }
        let mut out = Vec::new();
        let mut m = self.matcher.lock();
        m.on_cancel(order_id, self.clock.now(), &mut out);
        send_all(&self.events, &mut out);
        Ok(())
    }

    fn replace(&self, order: &Order, amendment: &Amendment) -> Result<(), BrokerError> {
        if self.events.is_closed() || self.commands.is_closed() {
            return Err(BrokerError::RoutingDown("paper broker stopped".into()));
        }
        let mut out = Vec::new();
        let mut m = self.matcher.lock();
        m.on_replace(order.id, amendment, &mut self.market.clone(), self.clock.now(), &mut out);
        send_all(&self.events, &mut out);
        Ok(())
    }

    fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
        self.matcher.lock().working_orders()
    }
}

impl Engine {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut trades: broadcast::Receiver<MarketEvent>,
    ) {
        let mut wake = tokio::time::interval(std::time::Duration::from_secs(1));
        wake.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut out = Vec::new();
        loop {
            tokio::select! {
                biased;
                cmd = commands.recv() => {
                    let now = self.clock.now();
                    let mut m = self.matcher.lock();
                    match cmd {
                        Some(Command::New(order)) => m.on_new(&order, &mut self.market, now, &mut out),
                        Some(Command::Cancel(id)) => m.on_cancel(id, now, &mut out),
                        None => return,
                    }
                    send_all(&self.events, &mut out);
                }
                ev = trades.recv() => match ev {
                    Ok(MarketEvent::Trade(t)) => {
                        let ours = t.buyer_agent == PAPER_AGENT || t.seller_agent == PAPER_AGENT;
                        let Ok(symbol) = Symbol::parse(&t.symbol) else { continue };
                        let print = Print { symbol, price: t.price, quantity: t.quantity, ours, ts: t.receive_ts };
                        let mut m = self.matcher.lock();
                        m.on_print(&print, &mut self.market, &mut out);
                        send_all(&self.events, &mut out);
                    }
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
                    let mut m = self.matcher.lock();
                    m.on_time(self.clock.now(), &mut out);
                    send_all(&self.events, &mut out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::order::{OrderEvent, OrderRequest, OrderType, PositionType, TimeInForce};
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
