//! Order Manager behaviour against a broker the test drives by hand, and against the paper broker.

use chrono::{DateTime, Utc};
use clock::WallClock;
use domain::broker::{Broker, BrokerConnection, BrokerError, BrokerEvent, BrokerOrderSnapshot, LinkState};
use domain::calendar::TradingCalendar;
use domain::order::{
    Amendment, Fill, Order, OrderEvent, OrderId, OrderRequest, OrderStatus, OrderType, PositionType, Side, TimeInForce,
};
use domain::risk::RiskLimits;
use domain::{Instruments, Money, Price, Qty};
use order_manager::{Actor, Modify, OmsError, OrderManager, SubmitOutcome};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A broker whose events the test sends itself: lets a test replay duplicate fills or drop acknowledgements.
struct ManualBroker {
    submitted: Mutex<Vec<Order>>,
    canceled: Mutex<Vec<OrderId>>,
    replaced: Mutex<Vec<(OrderId, Amendment)>>,
    working: Mutex<Vec<BrokerOrderSnapshot>>,
    routing: Mutex<LinkState>,
}

impl ManualBroker {
    fn new() -> Arc<Self> {
        Arc::new(ManualBroker {
            submitted: Mutex::new(Vec::new()),
            canceled: Mutex::new(Vec::new()),
            replaced: Mutex::new(Vec::new()),
            working: Mutex::new(Vec::new()),
            routing: Mutex::new(LinkState::Connected),
        })
    }
}

impl Broker for ManualBroker {
    fn name(&self) -> &'static str {
        "manual"
    }
    fn connection(&self) -> BrokerConnection {
        let r = *self.routing.lock().unwrap();
        BrokerConnection { login: LinkState::Connected, routing: r, market_data: LinkState::Connected }
    }
    fn submit(&self, order: &Order) -> Result<(), BrokerError> {
        self.submitted.lock().unwrap().push(order.clone());
        Ok(())
    }
    fn cancel(&self, order_id: OrderId) -> Result<(), BrokerError> {
        self.canceled.lock().unwrap().push(order_id);
        Ok(())
    }
    fn replace(&self, order: &Order, amendment: &Amendment) -> Result<(), BrokerError> {
        self.replaced.lock().unwrap().push((order.id, *amendment));
        Ok(())
    }
    fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
        self.working.lock().unwrap().clone()
    }
}

fn instruments() -> Instruments {
    Instruments::b3_defaults(Utc::now().date_naive())
}

async fn open(path: &Path, broker: Arc<dyn Broker>, events: mpsc::UnboundedReceiver<BrokerEvent>) -> OrderManager {
    let (oms, report) =
        OrderManager::recover(path, instruments(), TradingCalendar::Continuous, Arc::new(WallClock)).unwrap();
    oms.on_market_trade("PETR4", Price::from_f64(30.0).unwrap());
    oms.attach_broker(broker, events, &report).await.unwrap();
    oms
}

fn limit(side: Side, qty: i64, price: f64) -> OrderRequest {
    OrderRequest {
        symbol: domain::Symbol::lit("PETR4"),
        side,
        order_type: OrderType::Limit,
        quantity: Qty(qty),
        price: Price::from_f64(price),
        stop_price: None,
        time_in_force: TimeInForce::Day,
        client_order_id: None,
        position_type: PositionType::Daytrade,
        justification: Some("test".into()),
        source: None,
    }
}

fn ev(order_id: OrderId, event: OrderEvent) -> BrokerEvent {
    BrokerEvent { order_id, event, ts: Utc::now() }
}

fn fill(exec: &str, qty: i64, price: f64) -> OrderEvent {
    OrderEvent::Filled(Fill {
        exec_id: exec.into(),
        quantity: Qty(qty),
        price: Price::from_f64(price).unwrap(),
        ts: DateTime::<Utc>::UNIX_EPOCH,
    })
}

async fn settle(oms: &OrderManager, id: OrderId, pred: impl Fn(&Order) -> bool) -> Order {
    for _ in 0..200 {
        if let Some(o) = oms.get(id) {
            if pred(&o) {
                return o;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("order {id} did not reach the expected state: {:?}", oms.get(id));
}

#[tokio::test]
async fn duplicate_fills_do_not_double_positions_and_replay_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oms.journal");
    let broker = ManualBroker::new();
    let (tx, rx) = mpsc::unbounded_channel();
    let oms = open(&path, broker.clone(), rx).await;
    let actor = Actor::new("alice");

    let o = oms.submit(limit(Side::Buy, 300, 30.0), &actor).await.unwrap().order().clone();
    assert_eq!(o.status, OrderStatus::PendingNew);
    assert_eq!(broker.submitted.lock().unwrap().len(), 1);
    tx.send(ev(o.id, OrderEvent::Accepted { broker_order_id: "X1".into() })).unwrap();
    tx.send(ev(o.id, fill("f1", 100, 30.0))).unwrap();
    tx.send(ev(o.id, fill("f1", 100, 30.0))).unwrap();
    tx.send(ev(o.id, fill("f2", 200, 29.99))).unwrap();
    tx.send(ev(o.id, fill("f2", 200, 29.99))).unwrap();
    let o = settle(&oms, o.id, |o| o.status == OrderStatus::Filled).await;
    assert_eq!(o.filled_quantity, Qty(300));
    // Both repeats were processed (and refused as duplicates), not merely not yet seen.
    wait_for(|| oms.refused_events().1 == 2).await;
    assert_eq!(oms.positions().positions[0].quantity, Qty(300), "re-sent fills must not double the position");

    // An illegal event (a fill on a filled order) is refused and changes nothing.
    let before = oms.durable_state();
    let illegal_before = oms.refused_events().0;
    tx.send(ev(o.id, fill("f3", 1, 30.0))).unwrap();
    wait_for(|| oms.refused_events().0 == illegal_before + 1).await;
    assert_eq!(oms.durable_state(), before);

    // More history: a sale that realizes P&L, a resting order, a cancel, new limits, the kill switch.
    let s = oms.submit(limit(Side::Sell, 100, 30.5), &actor).await.unwrap().order().clone();
    tx.send(ev(s.id, OrderEvent::Accepted { broker_order_id: "X2".into() })).unwrap();
    tx.send(ev(s.id, fill("g1", 100, 30.5))).unwrap();
    let r = oms.submit(limit(Side::Buy, 100, 29.0), &actor).await.unwrap().order().clone();
    tx.send(ev(r.id, OrderEvent::Accepted { broker_order_id: "X3".into() })).unwrap();
    settle(&oms, r.id, |o| o.status == OrderStatus::New).await;
    let limits = RiskLimits { daily_loss_limit: Money::from_brl(2_000), ..RiskLimits::default() };
    oms.set_limits(limits.clone(), "tighter for the test", &Actor::new("admin")).await.unwrap();
    oms.activate_kill_switch(&actor, "test stop", true, false).await.unwrap();
    assert_eq!(oms.get(r.id).unwrap().status, OrderStatus::PendingCancel);
    assert!(broker.canceled.lock().unwrap().contains(&r.id));
    tx.send(ev(r.id, OrderEvent::Canceled { reason: "ok".into() })).unwrap();
    settle(&oms, r.id, |o| o.status == OrderStatus::Canceled).await;
    let realized = oms.positions().realized_today;
    assert!(realized > Some(Money::ZERO));

    let state = oms.durable_state();
    oms.shutdown();
    drop(oms);

    let (tx2, rx2) = mpsc::unbounded_channel();
    drop(tx2);
    let broker2 = ManualBroker::new();
    let oms2 = open(&path, broker2, rx2).await;
    assert_eq!(
        oms2.durable_state(),
        state,
        "replay restores orders, fills, positions, limits and the kill switch exactly"
    );
    assert!(oms2.kill_switch().active);
    assert_eq!(oms2.limits(), limits);
    let err = oms2.submit(limit(Side::Buy, 100, 30.0), &actor).await.unwrap_err();
    assert!(matches!(err, OmsError::Risk { ref rejection, .. } if rejection.code() == "KILL_SWITCH_ACTIVE"));
}

#[tokio::test]
async fn client_order_id_is_idempotent_and_rejections_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = mpsc::unbounded_channel();
    let broker = ManualBroker::new();
    let oms = open(&dir.path().join("j"), broker.clone(), rx).await;
    let actor = Actor::new("bob");
    let mut req = limit(Side::Buy, 100, 30.0);
    req.client_order_id = Some("abc-1".into());
    let first = oms.submit(req.clone(), &actor).await.unwrap();
    let again = oms.submit(req.clone(), &actor).await.unwrap();
    assert!(matches!(first, SubmitOutcome::Created(_)));
    assert!(matches!(again, SubmitOutcome::Existing(_)));
    assert_eq!(first.order().id, again.order().id);
    assert_eq!(broker.submitted.lock().unwrap().len(), 1, "never a second order at the broker");
    // The same key with different terms is not the same request: refused, naming what differs.
    for (changed, field) in [
        (OrderRequest { quantity: Qty(-100), ..req.clone() }, "quantity"),
        (OrderRequest { symbol: domain::Symbol::lit("VALE3"), ..req.clone() }, "symbol"),
        (OrderRequest { side: Side::Sell, ..req.clone() }, "side"),
        (OrderRequest { price: Some(Price::from_f64(30.01).unwrap()), ..req.clone() }, "price"),
    ] {
        let err = oms.submit(changed, &actor).await.unwrap_err();
        assert!(
            matches!(&err, OmsError::ReusedClientOrderId { field: f, original, .. } if *f == field && original.id == first.order().id),
            "{err:?}"
        );
    }
    assert_eq!(broker.submitted.lock().unwrap().len(), 1);
    // A rejected original is returned as it is to an identical retry.
    let mut refused = limit(Side::Buy, 100, 40.0);
    refused.client_order_id = Some("abc-2".into());
    let OmsError::Risk { order: rejected, .. } = oms.submit(refused.clone(), &actor).await.unwrap_err() else {
        panic!("expected a risk rejection")
    };
    let retry = oms.submit(refused, &actor).await.unwrap();
    assert!(matches!(&retry, SubmitOutcome::Existing(o) if o.id == rejected.id && o.status == OrderStatus::Rejected));

    let err = oms.submit(limit(Side::Buy, 100, 40.0), &actor).await.unwrap_err();
    let OmsError::Risk { order, rejection } = err else { panic!("expected a risk rejection") };
    assert_eq!(rejection.code(), "PRICE_BAND");
    let stored = oms.get(order.id).unwrap();
    assert_eq!(stored.status, OrderStatus::Rejected);
    assert_eq!(stored.reject_code.as_deref(), Some("PRICE_BAND"));
    assert!(stored.reject_reason.is_some());

    let err = oms.submit(limit(Side::Buy, 150, 30.0), &actor).await.unwrap_err();
    assert!(matches!(err, OmsError::Invalid(ref v) if v.field == "quantity"));
    let (audit, _) = oms.audit(0, 1000, None).unwrap();
    assert!(audit.iter().any(|a| a.result == "invalid"), "invalid orders are in the audit trail");
    assert!(audit.iter().any(|a| a.result == "rejected:PRICE_BAND"));
}

#[tokio::test]
async fn routing_down_pauses_new_orders() {
    let dir = tempfile::tempdir().unwrap();
    let (_tx, rx) = mpsc::unbounded_channel();
    let broker = ManualBroker::new();
    let oms = open(&dir.path().join("j"), broker.clone(), rx).await;
    *broker.routing.lock().unwrap() = LinkState::Disconnected;
    let err = oms.submit(limit(Side::Buy, 100, 30.0), &Actor::new("c")).await.unwrap_err();
    assert!(matches!(err, OmsError::Unavailable(_)));
}

#[tokio::test]
async fn reconciliation_records_what_it_corrects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let oms = open(&path, ManualBroker::new(), rx).await;
        let o = oms.submit(limit(Side::Buy, 100, 29.5), &Actor::new("d")).await.unwrap().order().clone();
        tx.send(ev(o.id, OrderEvent::Accepted { broker_order_id: "B-1".into() })).unwrap();
        settle(&oms, o.id, |o| o.status == OrderStatus::New).await;
        oms.shutdown();
    }
    // The broker forgot order 1 and works an order 99 we never sent.
    let broker = ManualBroker::new();
    broker.working.lock().unwrap().push(BrokerOrderSnapshot {
        order_id: 99,
        broker_order_id: "B-99".into(),
        filled_quantity: Qty(0),
    });
    let (_tx, rx) = mpsc::unbounded_channel();
    let oms = open(&path, broker.clone(), rx).await;
    assert_eq!(oms.get(1).unwrap().status, OrderStatus::Canceled);
    assert_eq!(broker.canceled.lock().unwrap().as_slice(), &[99]);
    let (audit, _) = oms.audit(0, 1000, None).unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == "reconcile").count(), 2);
}

#[tokio::test]
async fn daily_loss_limit_trips_the_kill_switch_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let oms = open(&dir.path().join("j"), ManualBroker::new(), rx).await;
    let admin = Actor::new("admin");
    oms.set_limits(RiskLimits { daily_loss_limit: Money::from_brl(100), ..RiskLimits::default() }, "small", &admin)
        .await
        .unwrap();
    let o = oms.submit(limit(Side::Buy, 1000, 30.0), &Actor::new("e")).await.unwrap().order().clone();
    tx.send(ev(o.id, OrderEvent::Accepted { broker_order_id: "B".into() })).unwrap();
    tx.send(ev(o.id, fill("x", 1000, 30.0))).unwrap();
    settle(&oms, o.id, |o| o.status == OrderStatus::Filled).await;
    // -R$ 0.09 × 1000 = -R$ 90: 90 % of the limit, a warning only.
    oms.on_market_trade("PETR4", Price::from_f64(29.91).unwrap());
    assert!(!oms.kill_switch().active);
    // The warning is journaled without anyone waiting on it: wait for the journal, then read the trail.
    oms.sync_journal().await.unwrap();
    let (audit, _) = oms.audit(0, 1000, None).unwrap();
    assert!(audit.iter().any(|a| a.action == "loss_warning"), "a warning is recorded at 80 % of the limit");
    // -R$ 100: the limit.
    oms.on_market_trade("PETR4", Price::from_f64(29.90).unwrap());
    let ks = oms.kill_switch();
    assert!(ks.active && ks.automatic);
    assert!(ks.reason.unwrap().contains("loss limit"));
}

#[tokio::test]
async fn kill_switch_with_the_paper_broker_cancels_and_flattens() {
    use market_sim::{SimConfig, SimMarket};
    let dir = tempfile::tempdir().unwrap();
    let market = SimMarket::new(instruments(), SimConfig::default());
    market.warm_up(Utc::now());
    let (oms, report) =
        OrderManager::recover(&dir.path().join("j"), instruments(), TradingCalendar::Continuous, Arc::new(WallClock))
            .unwrap();
    let last = market.last_price("PETR4").unwrap();
    oms.on_market_trade("PETR4", last);
    let (broker, events) = paper_broker::PaperBroker::start(
        market.clone(),
        TradingCalendar::Continuous,
        oms.open_orders(),
        clock::WallClock::shared(),
    );
    oms.attach_broker(broker, events, &report).await.unwrap();
    let t = Actor::new("trader");
    let mut buy = limit(Side::Buy, 200, 0.0);
    buy.order_type = OrderType::Market;
    buy.price = None;
    let filled = oms.submit(buy, &t).await.unwrap().order().clone();
    settle(&oms, filled.id, |o| o.status == OrderStatus::Filled).await;
    let resting_px = Price(last.units() - 100 * 20);
    let mut rest = limit(Side::Buy, 100, 0.0);
    rest.price = Some(resting_px);
    let resting = oms.submit(rest, &t).await.unwrap().order().clone();
    settle(&oms, resting.id, |o| o.status == OrderStatus::New).await;

    oms.activate_kill_switch(&t, "desk stop", true, true).await.unwrap();
    settle(&oms, resting.id, |o| o.status == OrderStatus::Canceled).await;
    wait_for(|| oms.positions().positions.iter().all(|p| p.quantity.is_zero())).await;
    let flatten = oms.list(&order_manager::OrderFilter { limit: 10, ..Default::default() }).0;
    let flatten = flatten.iter().find(|o| o.source == "kill-switch-flatten").expect("a flatten order");
    assert_eq!(flatten.status, OrderStatus::Filled);
    // Everything journaled so far is on disk, so the trail below is complete.
    oms.sync_journal().await.unwrap();
    let (trail, _) = oms.audit(0, 1000, Some(flatten.id)).unwrap();
    assert!(
        trail.iter().all(|a| a.action != "cancel_order"),
        "the switch does not cancel its own flatten orders: {trail:?}"
    );
    oms.release_kill_switch(&Actor::new("admin"), "resume").await.unwrap();
    assert!(!oms.kill_switch().active);
}

/// Waits (up to 10 s) for a condition the test caused to become true.
async fn wait_for(f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "condition not reached in 10 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn small_segments() -> order_manager::OmsOptions {
    order_manager::OmsOptions { segment_bytes: 4096 }
}

/// Recovers with small segments; no broker attached, so nothing reconciles the recovered state away.
fn recover_small(path: &Path) -> (OrderManager, order_manager::RecoveryReport) {
    OrderManager::recover_with(path, instruments(), TradingCalendar::Continuous, Arc::new(WallClock), small_segments())
        .unwrap()
}

/// Waits until a snapshot covers every sealed segment.
async fn snapshots_caught_up(oms: &OrderManager) -> u64 {
    let target = oms.journal().segments().last().map(|s| s.0.last).expect("segments were sealed");
    let mut done = oms.snapshots();
    tokio::time::timeout(Duration::from_secs(30), done.wait_for(|&n| n >= target))
        .await
        .expect("a snapshot covering the sealed segments in time")
        .expect("snapshot writer alive");
    target
}

#[tokio::test]
async fn a_restart_from_a_snapshot_equals_a_full_replay_and_old_segments_are_archived() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal").join("oms.journal");
    let (tx, rx) = mpsc::unbounded_channel();
    let (oms, report) = recover_small(&path);
    oms.attach_broker(ManualBroker::new(), rx, &report).await.unwrap();
    oms.on_market_trade("PETR4", Price::from_f64(30.0).unwrap());
    let actor = Actor::new("alice");
    let fast = RiskLimits { max_orders_per_second: 100_000, ..RiskLimits::default() };
    oms.set_limits(fast.clone(), "many orders", &actor).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..120 {
        let side = if i % 3 == 0 { Side::Sell } else { Side::Buy };
        let o = oms.submit(limit(side, 100, 30.0 + (i % 5) as f64 / 100.0), &actor).await.unwrap().order().clone();
        tx.send(ev(o.id, OrderEvent::Accepted { broker_order_id: format!("B{i}") })).unwrap();
        if i % 4 != 3 {
            tx.send(ev(o.id, fill(&format!("E{i}"), 100, 30.0))).unwrap();
            // A repeat of the same fill: refused as a duplicate, counted, in the snapshot too.
            if i % 10 == 0 {
                tx.send(ev(o.id, fill(&format!("E{i}"), 100, 30.0))).unwrap();
            }
        }
        ids.push(o.id);
    }
    let last = *ids.last().unwrap();
    settle(&oms, last, |o| o.status == OrderStatus::New || o.status == OrderStatus::Filled).await;
    wait_for(|| oms.refused_events().1 == 12).await;
    oms.set_limits(RiskLimits { daily_loss_limit: Money::from_brl(7_000), ..fast }, "t", &actor).await.unwrap();
    oms.sync_journal().await.unwrap();
    let covered = snapshots_caught_up(&oms).await;
    let archived = oms.journal().segments().iter().filter(|s| s.1).count();
    assert!(archived >= 3, "segments a snapshot covers are archived: {:?}", oms.journal().segments());
    let trail = |oms: &OrderManager| {
        let (rows, _) = oms.audit(0, 100, Some(ids[0])).unwrap();
        rows.iter().map(|r| serde_json::to_string(r).unwrap()).collect::<Vec<_>>()
    };
    let first_trail = trail(&oms);
    // Submitted, accepted, filled, and the refused repeat of the fill.
    assert_eq!(first_trail.len(), 4, "the trail of an order in an archived segment is still read");
    let (state, counts, records) = (oms.durable_state(), oms.order_counts(), oms.journal().len());
    oms.shutdown();
    drop(oms);

    // From the snapshot: only the records after it are decoded.
    let (oms, report) = recover_small(&path);
    assert!(report.snapshot_records >= covered, "{report:?}");
    assert_eq!(report.replayed_records, records - report.snapshot_records, "{report:?}");
    assert_eq!(oms.durable_state(), state);
    assert_eq!(oms.order_counts(), counts);
    assert_eq!(oms.refused_events().1, 12);
    assert_eq!(trail(&oms), first_trail);
    oms.shutdown();
    drop(oms);

    // Without snapshots, the archive still holds every record: a full replay builds the same state.
    let snapshots = dir.path().join("journal").join("snapshots");
    let kept = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        let entry = entry.unwrap();
        std::fs::rename(entry.path(), kept.path().join(entry.file_name())).unwrap();
    }
    let (oms, report) = recover_small(&path);
    assert_eq!(report.snapshot_records, 0);
    assert_eq!(oms.durable_state(), state, "a full replay equals the snapshot's state");
    assert_eq!(oms.order_counts(), counts);
    oms.shutdown();
    drop(oms);

    // A damaged newest snapshot is skipped for an older one (or none), never trusted.
    std::fs::remove_dir_all(&snapshots).unwrap();
    std::fs::rename(kept.path(), &snapshots).unwrap();
    let mut newest: Vec<_> = std::fs::read_dir(&snapshots).unwrap().map(|e| e.unwrap().path()).collect();
    newest.sort();
    let newest = newest.pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&newest, bytes).unwrap();
    let (oms, report) = recover_small(&path);
    assert!(report.snapshot_records < covered, "{report:?}");
    assert_eq!(oms.durable_state(), state);
    oms.shutdown();
}

/// A backtest's Order Manager: journal in memory, simulated time, broker events delivered by the caller. The same
/// records as live, stamped with the simulated clock, and no runtime needed.
#[test]
fn in_memory_with_a_simulated_clock_runs_without_a_runtime() {
    let t0 = DateTime::parse_from_rfc3339("2025-03-10T14:00:00Z").unwrap().with_timezone(&Utc);
    let clock = clock::SimClock::new(t0);
    let oms = OrderManager::in_memory(instruments(), TradingCalendar::Continuous, clock.clone());
    let broker = ManualBroker::new();
    oms.attach_broker_inline(broker.clone()).unwrap();
    assert!(oms.attach_broker_inline(broker.clone()).is_err(), "one broker");
    oms.on_market_trade("PETR4", Price::from_f64(38.50).unwrap());
    let t1 = clock.advance_to(t0 + chrono::Duration::seconds(90));
    let routed = oms.route(limit(Side::Buy, 200, 38.50), &Actor::new("algo")).unwrap();
    let id = routed.outcome().unwrap().id;
    assert_eq!(broker.submitted.lock().unwrap().len(), 1, "routed at once");
    let fill = Fill { exec_id: "x-1".into(), quantity: Qty(200), price: Price::from_f64(38.50).unwrap(), ts: t1 };
    let events = [OrderEvent::Accepted { broker_order_id: "B-1".into() }, OrderEvent::Filled(fill)];
    oms.on_broker_events(events.into_iter().map(|event| BrokerEvent { order_id: id, event, ts: t1 }));
    assert_eq!(oms.get(id).unwrap().status, OrderStatus::Filled);
    assert_eq!(oms.positions().positions[0].quantity, Qty(200));
    let (trail, total) = oms.audit(0, 100, None).unwrap();
    assert_eq!(total, oms.journal().len());
    assert!(trail.iter().filter(|a| a.order_id == Some(id)).all(|a| a.ts == t1), "stamped in simulated time");
    assert!(oms.journal().is_in_memory());
}

#[tokio::test]
async fn a_modify_is_risk_checked_as_the_order_it_becomes_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oms.journal");
    let broker = ManualBroker::new();
    let (tx, rx) = mpsc::unbounded_channel();
    let oms = open(&path, broker.clone(), rx).await;
    let actor = Actor::new("alice");
    let limits = RiskLimits { position_limit_stock: Qty(1_000), ..RiskLimits::default() };
    oms.set_limits(limits, "a small position limit", &Actor::new("admin")).await.unwrap();
    let o = oms.submit(limit(Side::Buy, 300, 30.0), &actor).await.unwrap().order().clone();
    let change = Modify { quantity: Some(Qty(400)), ..Modify::default() };
    assert!(matches!(oms.modify(o.id, change, &actor).await, Err(OmsError::Conflict(_))), "not acknowledged yet");
    tx.send(ev(o.id, OrderEvent::Accepted { broker_order_id: "X1".into() })).unwrap();
    tx.send(ev(o.id, fill("f1", 100, 30.0))).unwrap();
    settle(&oms, o.id, |o| o.status == OrderStatus::PartiallyFilled).await;

    // Holding 100 with 200 working: 1,100 would go over the limit of 1,000 (the new remaining 1,000 + 100 held).
    let too_big = Modify { quantity: Some(Qty(1_100)), ..Modify::default() };
    match oms.modify(o.id, too_big, &actor).await {
        Err(OmsError::Risk { rejection, .. }) => assert_eq!(rejection.code(), "POSITION_LIMIT"),
        other => panic!("{other:?}"),
    }
    // The remaining 900 + 100 held is exactly the limit: the old 200 working is not counted twice.
    let change = Modify { quantity: Some(Qty(1_000)), price: Price::from_f64(29.9), stop_price: None };
    let pending = oms.modify(o.id, change, &actor).await.unwrap();
    let asked = Amendment { quantity: Qty(1_000), price: Price::from_f64(29.9), stop_price: None };
    assert_eq!((pending.quantity, pending.pending_replace), (Qty(300), Some(asked)), "old terms until confirmed");
    assert_eq!(broker.replaced.lock().unwrap().as_slice(), &[(o.id, asked)]);
    assert!(matches!(oms.modify(o.id, change, &actor).await, Err(OmsError::Conflict(_))), "one at a time");
    tx.send(ev(o.id, OrderEvent::Replaced(asked))).unwrap();
    let o = settle(&oms, o.id, |o| o.pending_replace.is_none()).await;
    assert_eq!((o.quantity, o.price, o.leaves_quantity()), (Qty(1_000), asked.price, Qty(900)));
    oms.sync_journal().await.unwrap();
    let audit: Vec<String> = oms.audit(0, 100, Some(o.id)).unwrap().0.into_iter().map(|e| e.action).collect();
    assert!(audit.iter().any(|a| a == "modify_order"), "{audit:?}");

    let state = oms.durable_state();
    oms.shutdown();
    drop(oms);
    let (_, rx2) = mpsc::unbounded_channel();
    let broker2 = ManualBroker::new();
    let at_broker = BrokerOrderSnapshot { order_id: o.id, broker_order_id: "X1".into(), filled_quantity: Qty(100) };
    broker2.working.lock().unwrap().push(at_broker);
    let oms2 = open(&path, broker2, rx2).await;
    assert_eq!(oms2.durable_state(), state, "the replay holds the new terms");
    assert_eq!(oms2.get(o.id).unwrap().quantity, Qty(1_000));
}

#[tokio::test]
async fn an_account_kill_switch_cancels_and_flattens_that_account_only() {
    let dir = tempfile::tempdir().unwrap();
    let broker = ManualBroker::new();
    let (tx, rx) = mpsc::unbounded_channel();
    let oms = open(&dir.path().join("oms.journal"), broker.clone(), rx).await;
    let (alice, bob) = (Actor::new("alice"), Actor::new("bob"));
    for (who, exec) in [(&alice, "a1"), (&bob, "b1")] {
        let o = oms.submit(limit(Side::Buy, 100, 30.0), who).await.unwrap().order().clone();
        tx.send(ev(o.id, OrderEvent::Accepted { broker_order_id: format!("X{}", o.id) })).unwrap();
        tx.send(ev(o.id, fill(exec, 100, 30.0))).unwrap();
        settle(&oms, o.id, |o| o.status == OrderStatus::Filled).await;
    }
    let resting: Vec<Order> = resting(&oms, &tx, &[&alice, &bob]).await;
    let view = oms.positions();
    assert_eq!(view.positions[0].quantity, Qty(200), "the desk holds both");
    assert_eq!(
        view.accounts.iter().map(|a| (a.account.as_str(), a.positions[0].quantity)).collect::<Vec<_>>(),
        vec![("alice", Qty(100)), ("bob", Qty(100))]
    );

    let state = oms
        .activate_account_kill_switch(domain::AccountId::new("alice"), &alice, "alice stops", true, true)
        .await
        .unwrap();
    assert!(state.active && state.account.as_ref().is_some_and(|a| a.as_str() == "alice"));
    assert_eq!(broker.canceled.lock().unwrap().as_slice(), &[resting[0].id], "only alice's order is canceled");
    let flatten: Vec<Order> =
        broker.submitted.lock().unwrap().iter().filter(|o| o.source == "kill-switch-flatten").cloned().collect();
    assert_eq!(flatten.len(), 1);
    assert_eq!((flatten[0].account.as_str(), flatten[0].side, flatten[0].quantity), ("alice", Side::Sell, Qty(100)));
    assert!(oms.submit(limit(Side::Buy, 100, 30.0), &alice).await.is_err(), "alice is blocked");
    assert!(oms.submit(limit(Side::Buy, 100, 30.0), &bob).await.is_ok(), "bob is not");
    assert!(!oms.kill_switch().active, "the global switch is untouched");
    oms.release_account_kill_switch(domain::AccountId::new("alice"), &Actor::new("admin"), "resume").await.unwrap();
    assert!(oms.submit(limit(Side::Buy, 100, 30.0), &alice).await.is_ok());
}

/// One acknowledged resting order per actor, in order.
async fn resting(oms: &OrderManager, tx: &mpsc::UnboundedSender<BrokerEvent>, who: &[&Actor]) -> Vec<Order> {
    let mut out = Vec::new();
    for a in who {
        let o = oms.submit(limit(Side::Buy, 100, 29.5), a).await.unwrap().order().clone();
        tx.send(ev(o.id, OrderEvent::Accepted { broker_order_id: format!("R{}", o.id) })).unwrap();
        out.push(settle(oms, o.id, |o| o.status == OrderStatus::New).await);
    }
    out
}
