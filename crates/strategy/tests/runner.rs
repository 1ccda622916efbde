//! A strategy on the bus sends its orders through the Order Manager.

use chrono::Utc;
use clock::WallClock;
use domain::calendar::TradingCalendar;
use domain::Instruments;
use market_sim::{SimConfig, SimMarket};
use order_manager::{OrderFilter, OrderManager};
use std::sync::Arc;
use std::time::Duration;

/// A simulated market, and an Order Manager trading on it through the paper broker.
async fn rig() -> (tempfile::TempDir, Instruments, SimMarket, OrderManager) {
    let dir = tempfile::tempdir().unwrap();
    let instruments = Instruments::b3_defaults(Utc::now().date_naive());
    let market = SimMarket::new(instruments.clone(), SimConfig::default());
    market.warm_up(Utc::now());
    let (oms, report) = OrderManager::recover(
        &dir.path().join("j"),
        instruments.clone(),
        TradingCalendar::Continuous,
        Arc::new(WallClock),
    )
    .unwrap();
    let (broker, events) = paper_broker::PaperBroker::start(
        market.clone(),
        TradingCalendar::Continuous,
        Vec::new(),
        clock::WallClock::shared(),
    );
    oms.attach_broker(broker, events, &report).await.unwrap();
    (dir, instruments, market, oms)
}

#[tokio::test]
async fn trades_on_the_bus_become_orders() {
    let (_dir, instruments, market, oms) = rig().await;
    let bus = bus::Bus::new();
    let _dc = data_capture::DataCapture::start_sim(&market, bus.clone(), 0, Vec::new(), clock::WallClock::shared());
    let ins = instruments.get("PETR4").unwrap().clone();
    let responder = strategy::Responder {
        symbol: domain::Symbol::lit("PETR4"),
        offset_bps: 300,
        tick: ins.tick_size,
        lot: ins.lot,
    };
    strategy::Runner::spawn(&bus, &["md.trades.PETR4".into()], oms.clone(), "algo", responder).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut printed = Vec::new();
    while printed.len() < 5 {
        printed.extend(market.step("PETR4", Utc::now()));
    }
    for _ in 0..200 {
        if oms.list(&OrderFilter { limit: 100, ..Default::default() }).1 >= printed.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (orders, total) = oms.list(&OrderFilter { limit: 100, ..Default::default() });
    assert!(total >= printed.len(), "{total} orders for {} trades", printed.len());
    assert!(orders.iter().all(|o| o.source == "strategy:responder" && o.account == "algo" && o.symbol == "PETR4"));
    for t in &printed {
        assert!(
            orders.iter().any(|o| o.client_order_id.as_deref() == Some(&format!("t{}", t.trade_id))),
            "trade {} answered",
            t.trade_id
        );
    }
}

/// Inline on Data Capture's thread: each trade the feed delivers is answered by an order routed before the next
/// trade is read, and the orders reach the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_strategy_answers_trades_on_the_feed_thread() {
    let (_dir, instruments, market, oms) = rig().await;
    let dc = data_capture::DataCapture::start_sim(&market, bus::Bus::new(), 0, Vec::new(), clock::WallClock::shared());
    let ins = instruments.get("PETR4").unwrap().clone();
    let responder = strategy::Responder {
        symbol: domain::Symbol::lit("PETR4"),
        offset_bps: 300,
        tick: ins.tick_size,
        lot: ins.lot,
    };
    strategy::Runner::inline(&dc, oms.clone(), "algo", responder);
    // Print until the feed has delivered (and the strategy answered) five trades.
    let mut printed = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while oms.list(&OrderFilter { limit: 1, ..Default::default() }).1 < 5 {
        assert!(std::time::Instant::now() < deadline, "no orders from the inline strategy in 10 s");
        printed.extend(market.step("PETR4", Utc::now()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (orders, _) = oms.list(&OrderFilter { limit: 1000, ..Default::default() });
    for o in &orders {
        assert_eq!((o.source.as_str(), o.account.as_str(), o.symbol.as_str()), ("strategy:responder", "algo", "PETR4"));
        let coid = o.client_order_id.clone().unwrap_or_default();
        assert!(printed.iter().any(|t| coid == format!("t{}", t.trade_id)), "{coid} answers a printed trade");
    }
    // Routed without waiting for the disk, but journaled: durable once the journal syncs.
    oms.sync_journal().await.unwrap();
    let (trail, _) = oms.audit(0, 10_000, None).unwrap();
    for o in &orders {
        assert!(
            trail.iter().any(|a| a.action == "submit_order" && a.order_id == Some(o.id)),
            "order {} journaled",
            o.id
        );
    }
}
