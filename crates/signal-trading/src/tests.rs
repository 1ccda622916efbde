use super::*;
use chrono::Utc;
use clock::WallClock;
use domain::calendar::TradingCalendar;
use domain::risk::RiskLimits;
use domain::Instruments;
use market_sim::{SimConfig, SimMarket};
use paper_broker::PaperBroker;
use std::time::Duration;

struct Rig {
    market: SimMarket,
    trader: Arc<Trader>,
    db: Db,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let instruments = Instruments::b3_defaults(Utc::now().date_naive());
    let market = SimMarket::new(instruments.clone(), SimConfig::default());
    market.warm_up(Utc::now());
    let (oms, report) = OrderManager::recover(
        &dir.path().join("oms.journal"),
        instruments,
        TradingCalendar::Continuous,
        Arc::new(WallClock),
    )
    .unwrap();
    let (broker, events) =
        PaperBroker::start(market.clone(), TradingCalendar::Continuous, Vec::new(), clock::WallClock::shared());
    oms.attach_broker(broker, events, &report).await.unwrap();
    for ins in market.instruments().iter() {
        if let Some(p) = market.last_price(&ins.symbol) {
            oms.on_market_trade(&ins.symbol, p);
        }
    }
    let limits = RiskLimits { max_orders_per_second: 10_000, ..RiskLimits::default() };
    oms.set_limits(limits, "test", &Actor::new("test")).await.unwrap();
    let db = Db::connect(&format!("sqlite://{}/t.db", dir.path().display())).await.unwrap();
    db.migrate().await.unwrap();
    let trader = Trader::new(oms, db.clone(), "signals", Sizing::Lots(2), Unprotected::Flatten).await.unwrap();
    trader.run();
    Rig { market, trader, db, _dir: dir }
}

/// Prints a trade at `price` on the simulated exchange (the paper broker fills resting orders and triggers stops).
fn print(market: &SimMarket, symbol: &str, price: Price) {
    let mut t = market.last_trade(symbol).unwrap();
    t.trade_id += 1;
    t.price = price;
    t.quantity = Qty(10_000);
    // Other participants (not the paper broker's own prints).
    t.buyer_agent = 3;
    t.seller_agent = 8;
    t.exchange_ts = Utc::now();
    t.receive_ts = t.exchange_ts;
    market.follow(&t);
}

async fn until(trader: &Trader, key: &str, what: &str, f: impl Fn(&Bracket) -> bool) -> Bracket {
    for _ in 0..300 {
        if let Some(b) = trader.bracket_state(key).await {
            if f(&b) {
                return b;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: {:?}", trader.bracket_state(key).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bracket_protects_the_fill_and_its_exits_cancel_each_other() {
    let r = rig().await;
    let px = r.market.last_price("PETR4").unwrap();
    let (tp1, tp2, stop) = (Price(px.units() + 5_000), Price(px.units() + 10_000), Price(px.units() - 10_000));
    let plan = Plan {
        key: "tp-1".into(),
        symbol: domain::Symbol::lit("PETR4"),
        side: Side::Buy,
        quantity: Qty(200),
        entry: None,
        stop: Some(stop),
        targets: vec![tp1, tp2],
        source: "tp-capital:1".into(),
        why: "TP-Capital signal 1".into(),
    };
    r.trader.open(plan).await;
    let b = until(&r.trader, "tp-1", "exits placed", |b| b.phase == Phase::Exits && b.stop_orders.len() == 1).await;
    assert_eq!((b.filled, b.take_profits.len()), (Qty(200), 2));
    let oms = r.trader.oms();
    let stop_order = oms.get(b.stop_orders[0]).unwrap();
    assert_eq!((stop_order.side, stop_order.quantity, stop_order.stop_price), (Side::Sell, Qty(200), Some(stop)));
    assert_eq!(stop_order.client_order_id.as_deref(), Some("tp-1-stop-1"));
    assert_eq!(stop_order.source, "tp-capital:1");
    let tps: Vec<_> = b.take_profits.iter().map(|id| oms.get(*id).unwrap()).collect();
    assert_eq!((tps[0].quantity, tps[0].price, tps[1].price), (Qty(100), Some(tp1), Some(tp2)));

    // The first target trades: its take-profit fills and the stop shrinks to the 100 left.
    print(&r.market, "PETR4", Price(tp1.units() + 100));
    let b = until(&r.trader, "tp-1", "stop resized", |b| b.stop_orders.len() == 2).await;
    let new_stop = oms.get(b.stop_orders[1]).unwrap();
    assert_eq!((new_stop.quantity, new_stop.client_order_id.as_deref()), (Qty(100), Some("tp-1-stop-2")));
    assert_eq!(oms.get(b.stop_orders[0]).unwrap().status, OrderStatus::Canceled);
    assert_eq!(oms.positions().positions.iter().find(|p| p.symbol == "PETR4").unwrap().quantity, Qty(100));

    // Then the stop: it fills, and the second take-profit is canceled.
    print(&r.market, "PETR4", Price(stop.units() - 100));
    let b = until(&r.trader, "tp-1", "closed", |b| b.phase == Phase::Closed).await;
    assert_eq!(oms.get(b.take_profits[1]).unwrap().status, OrderStatus::Canceled);
    assert_eq!(oms.positions().positions.iter().find(|p| p.symbol == "PETR4").unwrap().quantity, Qty::ZERO, "flat");
    // Stored: a new trader built from the database (a restart) knows it is closed and does not trade it again.
    let restarted =
        Trader::new(oms.clone(), r.db.clone(), "signals", Sizing::Lots(2), Unprotected::Flatten).await.unwrap();
    assert!(restarted.bracket("tp-1").is_none(), "closed brackets are not loaded as open");
    let orders_before = oms.list(&Default::default()).1;
    let again = restarted.open(b.plan.clone()).await;
    assert_eq!(again.phase, Phase::Closed);
    assert_eq!(oms.list(&Default::default()).1, orders_before, "nothing traded again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_entry_closes_the_bracket_with_the_reason() {
    let r = rig().await;
    r.trader.oms().activate_kill_switch(&Actor::new("risk"), "test", true, false).await.unwrap();
    let plan = Plan {
        key: "ml-7".into(),
        symbol: domain::Symbol::lit("VALE3"),
        side: Side::Sell,
        quantity: Qty(100),
        entry: None,
        stop: None,
        targets: vec![],
        source: "ml:v1:7".into(),
        why: "model".into(),
    };
    let b = r.trader.open(plan).await;
    assert_eq!(b.phase, Phase::Closed);
    assert!(b.notes[0].contains("KILL_SWITCH_ACTIVE"), "{:?}", b.notes);
    assert!(b.entry_order.is_none());
}

fn plan(key: &str, side: Side, entry: Option<Price>, stop: Option<Price>, targets: Vec<Price>) -> Plan {
    Plan {
        key: key.into(),
        symbol: domain::Symbol::lit("PETR4"),
        side,
        quantity: Qty(200),
        entry,
        stop,
        targets,
        source: format!("tp-capital:{key}"),
        why: "test".into(),
    }
}

/// A bracket whose exits would be refused is refused whole, before the entry: no fill is ever left unprotected
/// because its stop or target was on the wrong side or outside the band.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bracket_that_cannot_be_protected_is_refused_before_the_entry() {
    let r = rig().await;
    let px = r.market.last_price("PETR4").unwrap().units();
    let p = |u: i64| Price(u);
    for (key, side, stop, targets, expect) in [
        ("bad-1", Side::Buy, Some(p(px - 10_000)), vec![p(px - 5_000)], "target must be above"),
        ("bad-2", Side::Buy, Some(p(px + 10_000)), vec![p(px + 20_000)], "stop must be below"),
        ("bad-3", Side::Sell, Some(p(px - 10_000)), vec![p(px - 20_000)], "stop must be above"),
        ("bad-4", Side::Buy, Some(p(px / 200 * 100)), vec![p(px + 10_000)], "outside the price band"),
        ("bad-5", Side::Buy, Some(p(px - 10_050)), vec![], "tick grid"),
    ] {
        let b = r.trader.open(plan(key, side, None, stop, targets)).await;
        assert_eq!((b.phase, b.entry_order), (Phase::Closed, None), "{key}: {b:?}");
        assert!(b.notes[0].starts_with("rejected: ") && b.notes[0].contains(expect), "{key}: {:?}", b.notes);
    }
    assert_eq!(r.trader.oms().list(&Default::default()).1, 0, "no order was sent");
}

/// A stop refused after the entry filled: an alert (audit trail, metric, subscribers) and, by default, the
/// position closed at market.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_left_without_its_stop_alerts_and_is_flattened() {
    let r = rig().await;
    let oms = r.trader.oms().clone();
    let mut alerts = oms.subscribe();
    let px = r.market.last_price("PETR4").unwrap().units();
    let entry = Price(px - 500);
    let b =
        r.trader.open(plan("tp-9", Side::Buy, Some(entry), Some(Price(px - 10_000)), vec![Price(px + 10_000)])).await;
    assert_eq!(b.phase, Phase::Entry, "{b:?}");
    // The band tightens while the entry rests: the stop will be outside it when the entry fills.
    let limits = RiskLimits { price_band_bps: 10, max_orders_per_second: 10_000, ..RiskLimits::default() };
    oms.set_limits(limits, "tighter", &Actor::new("risk")).await.unwrap();
    print(&r.market, "PETR4", Price(entry.units() - 100));
    let b = until(&r.trader, "tp-9", "closed after flattening", |b| b.phase == Phase::Closed).await;
    assert!(b.unprotected, "{b:?}");
    assert!(b.notes.iter().any(|n| n.contains("left without its stop")), "{:?}", b.notes);
    assert_eq!(
        oms.positions().positions.iter().find(|p| p.symbol == "PETR4").map_or(Qty::ZERO, |p| p.quantity),
        Qty::ZERO,
        "flat"
    );
    oms.sync_journal().await.unwrap();
    let (trail, _) = oms.audit(0, 10_000, None).unwrap();
    assert!(trail.iter().any(|a| a.action == "alert" && a.result == "unprotected_position"), "in the audit trail");
    let mut seen = false;
    while let Ok(u) = alerts.try_recv() {
        seen |= matches!(u, OmsUpdate::Alert { ref kind, .. } if kind == "unprotected_position");
    }
    assert!(seen, "subscribers (the WebSocket) got the alert");
}

/// Brackets do not wait for each other: one held by a slow step does not hold up a new signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_bracket_does_not_hold_up_another() {
    let r = rig().await;
    let busy = r.trader.step_lock("busy");
    let _held = busy.lock().await;
    let plan = Plan {
        key: "ml-8".into(),
        symbol: domain::Symbol::lit("VALE3"),
        side: Side::Buy,
        quantity: Qty(100),
        entry: None,
        stop: None,
        targets: vec![],
        source: "ml:v1:8".into(),
        why: "model".into(),
    };
    // A deadlock detector, not a speed check: with one lock for all brackets this never returns.
    let b = tokio::time::timeout(Duration::from_secs(60), r.trader.open(plan))
        .await
        .expect("open waited on another bracket");
    assert!(b.entry_order.is_some(), "{b:?}");
}

#[test]
fn a_repeated_failure_is_noted_once_and_notes_are_bounded() {
    let plan = Plan {
        key: "k".into(),
        symbol: domain::Symbol::lit("PETR4"),
        side: Side::Buy,
        quantity: Qty(100),
        entry: None,
        stop: None,
        targets: vec![],
        source: "s".into(),
        why: "w".into(),
    };
    let mut b = Bracket {
        plan,
        phase: Phase::Exits,
        entry_order: None,
        filled: Qty::ZERO,
        stop_orders: vec![],
        take_profits: vec![],
        notes: vec![],
        unprotected: false,
    };
    for _ in 0..1000 {
        note(&mut b, "exit 7 not canceled: the broker is down".into());
    }
    assert_eq!(b.notes.len(), 1);
    for i in 0..1000 {
        note(&mut b, format!("failure {i}"));
    }
    assert_eq!(b.notes.len(), MAX_NOTES);
}

#[test]
fn sizing_is_whole_lots() {
    let ins = Instruments::b3_defaults(Utc::now().date_naive());
    let petr = ins.get("PETR4").unwrap();
    assert_eq!(Sizing::parse("lots:3").unwrap().quantity(petr, None), Qty(300));
    // R$ 10,000 at R$ 38.50 is 259 shares: two lots.
    assert_eq!(Sizing::parse("notional:10000").unwrap().quantity(petr, Some(Price(385_000))), Qty(200));
    // Never less than one lot.
    assert_eq!(Sizing::parse("notional:10").unwrap().quantity(petr, Some(Price(385_000))), Qty(100));
    for bad in ["lots", "lots:0", "notional:-5", "shares:3", "lots:x"] {
        assert!(Sizing::parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_signal_becomes_a_limit_bracket_at_the_far_end_of_its_range() {
    let r = rig().await;
    let p = |u: i64| Price(u);
    let targets = [p(400_000), p(410_000), p(410_000)];
    let buy = ChannelSignal {
        id: 7,
        channel_id: "-100777",
        signal_type: storage::SignalType::Swing,
        asset: "PETR4",
        side: Side::Buy,
        buy_min: Some(p(385_000)),
        buy_max: Some(p(386_000)),
        stop: Some(p(375_000)),
        targets: &targets,
    };
    let plan = r.trader.channel_plan(&buy).unwrap();
    assert_eq!((plan.key.as_str(), plan.source.as_str()), ("tp-7", "tp-capital:7"));
    assert_eq!((plan.side, plan.entry, plan.stop), (Side::Buy, Some(p(386_000)), Some(p(375_000))));
    assert_eq!(plan.targets, vec![p(400_000), p(410_000)], "each target once");
    assert_eq!(plan.quantity, Qty(200), "sized by the trader's Sizing (2 lots)");
    let sell = ChannelSignal { side: Side::Sell, ..buy.clone() };
    assert_eq!(r.trader.channel_plan(&sell).unwrap().entry, Some(p(385_000)), "a sale enters at the low end");
    let no_entry = ChannelSignal { buy_min: None, buy_max: None, ..buy.clone() };
    assert!(r.trader.channel_plan(&no_entry).unwrap_err().contains("no entry price"));
    let unknown = ChannelSignal { asset: "XPTO3", ..buy };
    assert!(r.trader.channel_plan(&unknown).unwrap_err().contains("not an instrument"));
}

#[test]
fn model_decisions() {
    assert_eq!(model_decision(None, 0.99, 0.6), ModelDecision::Hold);
    assert_eq!(model_decision(Some(Side::Buy), 0.59, 0.6), ModelDecision::BelowThreshold);
    assert_eq!(model_decision(Some(Side::Sell), 0.6, 0.6), ModelDecision::Pending);
    let plan = plan("k", Side::Buy, None, None, vec![]);
    let closed = |notes: Vec<&str>| Bracket {
        plan: plan.clone(),
        phase: Phase::Closed,
        entry_order: None,
        filled: Qty::ZERO,
        stop_orders: vec![],
        take_profits: vec![],
        notes: notes.into_iter().map(String::from).collect(),
        unprotected: false,
    };
    let decided = |b: &Bracket| traded_decision(b).to_string();
    assert_eq!(decided(&closed(vec!["rejected: stop above entry"])), "rejected: stop above entry");
    assert_eq!(decided(&closed(vec!["entry: kill switch"])), "not_traded: entry: kill switch");
    assert_eq!(decided(&Bracket { entry_order: Some(1), phase: Phase::Entry, ..closed(vec![]) }), "ordered");
}
