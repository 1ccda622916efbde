//! Live strategies on the simulated market: a panic stops only the strategy that panicked, and a strategy that
//! loses its allowance is stopped with its working orders canceled.

use chrono::Utc;
use clock::WallClock;
use domain::calendar::TradingCalendar;
use domain::order::{OrderRequest, OrderType, Side};
use domain::{Instruments, Money, Qty, Symbol};
use market_sim::{SimConfig, SimMarket};
use order_manager::OrderManager;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strategy::api::{Context, Strategy, TradeTick};
use strategy::live::{LiveConfig, LiveState, LiveStrategies};

async fn rig() -> (tempfile::TempDir, SimMarket, OrderManager, bus::Bus) {
    let dir = tempfile::tempdir().unwrap();
    let instruments = Instruments::b3_defaults(Utc::now().date_naive());
    let market = SimMarket::new(instruments.clone(), SimConfig::default());
    market.warm_up(Utc::now());
    let (oms, report) =
        OrderManager::recover(&dir.path().join("j"), instruments, TradingCalendar::Continuous, Arc::new(WallClock))
            .unwrap();
    let (broker, events) =
        paper_broker::PaperBroker::start(market.clone(), TradingCalendar::Continuous, Vec::new(), WallClock::shared());
    oms.attach_broker(broker, events, &report).await.unwrap();
    let bus = bus::Bus::new();
    (dir, market, oms, bus)
}

/// Panics on its `after`-th trade.
struct Bomb {
    symbols: Vec<Symbol>,
    seen: u32,
    after: u32,
}

impl Strategy for Bomb {
    fn name(&self) -> &str {
        "bomb"
    }
    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }
    fn on_trade(&mut self, _: &mut dyn Context, _: &TradeTick) {
        self.seen += 1;
        assert!(self.seen < self.after, "boom at trade {}", self.seen);
    }
}

/// Buys far above the market on its first trade (a sure loss once marked), then rests a bid far below it.
struct Loser {
    symbols: Vec<Symbol>,
    sent: bool,
}

impl Strategy for Loser {
    fn name(&self) -> &str {
        "loser"
    }
    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }
    fn on_trade(&mut self, ctx: &mut dyn Context, t: &TradeTick) {
        if self.sent {
            return;
        }
        self.sent = true;
        let order = |order_type, price| OrderRequest::new(t.symbol, Side::Buy, order_type, Qty(1000), price);
        ctx.submit(order(OrderType::Market, None)).unwrap();
        let far = domain::Price(t.price.units() * 95 / 100 / 100 * 100);
        ctx.submit(order(OrderType::Limit, Some(far))).unwrap();
    }
}

fn cfg(name: &str, max_loss: Option<Money>) -> LiveConfig {
    serde_json::from_value(serde_json::json!({"name": name, "kind": name, "symbols": ["PETR4"]}))
        .map(|c: LiveConfig| LiveConfig { max_loss, ..c })
        .unwrap()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not reached");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_stops_only_that_strategy_and_a_max_loss_stops_and_cancels() {
    isolation_and_max_loss(false).await;
}

/// The same with trades taken on Data Capture's thread: a panic there stops the strategy, not the feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_a_panic_stops_only_that_strategy_and_a_max_loss_stops_and_cancels() {
    isolation_and_max_loss(true).await;
}

async fn isolation_and_max_loss(inline: bool) {
    let (_dir, market, oms, bus) = rig().await;
    let (live, tap) = LiveStrategies::new(oms.clone(), bus.clone(), WallClock::shared()).inline_trades();
    let live = if inline { live } else { LiveStrategies::new(oms.clone(), bus.clone(), WallClock::shared()) };
    // The Order Manager marks positions from the tape, as `serve` wires it.
    let marks = oms.clone();
    let mark_tap: Arc<dyn Fn(&market_data::Trade) + Send + Sync> =
        Arc::new(move |t: &market_data::Trade| marks.on_market_trade(&t.symbol, t.price));
    let mut taps = vec![mark_tap];
    if inline {
        taps.push(tap);
    }
    let _dc = data_capture::DataCapture::start_sim(&market, bus.clone(), 0, taps, WallClock::shared());
    // The market moves (in `serve` its own task steps it).
    let m = market.clone();
    tokio::spawn(async move {
        loop {
            m.step("PETR4", Utc::now());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let pet = vec![Symbol::lit("PETR4")];
    let p = pet.clone();
    live.add_custom(cfg("bomb", None), Arc::new(move || Box::new(Bomb { symbols: p.clone(), seen: 0, after: 3 })))
        .unwrap();
    let p = pet.clone();
    live.add_custom(
        cfg("loser", Some(Money::from_brl(1))),
        Arc::new(move || Box::new(Loser { symbols: p.clone(), sent: false })),
    )
    .unwrap();
    let steady = live
        .add(
            serde_json::from_value(serde_json::json!({"name": "steady", "kind": "noop", "symbols": ["PETR4"]}))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(steady.state, LiveState::Running);

    wait_for("the bomb fails", || live.get("bomb").is_some_and(|s| s.state == LiveState::Failed)).await;
    let bomb = live.get("bomb").unwrap();
    assert!(bomb.last_error.as_deref().unwrap().contains("boom at trade 3"), "{:?}", bomb.last_error);
    assert_eq!(live.get("steady").unwrap().state, LiveState::Running, "the others carry on");

    wait_for("the loser is stopped", || {
        live.get("loser").is_some_and(|s| s.state == LiveState::Stopped && s.last_error.is_some())
    })
    .await;
    let loser = live.get("loser").unwrap();
    assert!(loser.last_error.as_deref().unwrap().starts_with("max loss reached"), "{:?}", loser.last_error);
    assert!(loser.pnl.0 <= -Money::from_brl(1).0);
    wait_for("its resting bid is canceled", || oms.open_orders().iter().all(|o| o.source != "strategy:loser")).await;

    // A failed strategy starts again, fresh.
    assert_eq!(live.start("bomb").unwrap().state, LiveState::Running);
    assert!(live.stop("nope").is_err());
}

/// Rests a bid far below the market, then modifies it to 300 once it is working; records what it has committed
/// each time one of its orders changes.
struct Mover {
    symbols: Vec<Symbol>,
    sent: bool,
    modified: bool,
    seen: Arc<parking_lot::Mutex<Vec<(Qty, Qty)>>>,
    refused: Arc<parking_lot::Mutex<Option<String>>>,
}

impl Strategy for Mover {
    fn name(&self) -> &str {
        "mover"
    }
    fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }
    fn on_trade(&mut self, ctx: &mut dyn Context, t: &TradeTick) {
        if !self.sent {
            self.sent = true;
            let far = domain::Price(t.price.units() * 95 / 100 / 100 * 100);
            ctx.submit(OrderRequest::new(t.symbol, Side::Buy, OrderType::Limit, Qty(100), Some(far))).unwrap();
        }
    }
    fn on_order(&mut self, ctx: &mut dyn Context, o: &domain::Order) {
        self.seen.lock().push((o.quantity, ctx.committed(&o.symbol)));
        if o.status == domain::OrderStatus::New && !self.modified {
            self.modified = true;
            if let Err(r) = ctx.modify(o.id, Some(Qty(150)), None) {
                *self.refused.lock() = Some(r.reason);
            }
            ctx.modify(o.id, Some(Qty(300)), None).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_strategy_modifies_its_order_in_place_and_its_commitment_follows() {
    let (_dir, market, oms, bus) = rig().await;
    let live = LiveStrategies::new(oms.clone(), bus.clone(), WallClock::shared());
    let _dc = data_capture::DataCapture::start_sim(&market, bus.clone(), 0, Vec::new(), WallClock::shared());
    let m = market.clone();
    tokio::spawn(async move {
        loop {
            m.step("PETR4", Utc::now());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let (seen, refused) = (Arc::new(parking_lot::Mutex::new(Vec::new())), Arc::new(parking_lot::Mutex::new(None)));
    let (s, r) = (seen.clone(), refused.clone());
    live.add_custom(
        cfg("mover", None),
        Arc::new(move || {
            Box::new(Mover {
                symbols: vec![Symbol::lit("PETR4")],
                sent: false,
                modified: false,
                seen: s.clone(),
                refused: r.clone(),
            })
        }),
    )
    .unwrap();
    wait_for("the order is modified to 300", || {
        oms.open_orders().iter().any(|o| o.source == "strategy:mover" && o.quantity == Qty(300))
    })
    .await;
    wait_for("the strategy sees it, committed to 300", || seen.lock().last() == Some(&(Qty(300), Qty(300)))).await;
    assert!(refused.lock().as_deref().is_some_and(|r| r.contains("lot")), "150 is not a lot: {:?}", refused.lock());
    assert_eq!(oms.open_orders().iter().filter(|o| o.source == "strategy:mover").count(), 1, "in place, one order");
}
