//! Tick-to-order latency in-process: a trade printed by the simulated market goes through Data Capture (validation,
//! candles), the bus, a strategy that answers it with an order, the Order Manager (validation, risk, journal
//! append) and reaches the paper broker's accept. Measured from the trade's receive timestamp (the feed adapter
//! taking it off the market's stream) to the accept, and from the market's print. Twice: with the strategy inline
//! in Data Capture, and reading the bus on its own task.
//!
//! `cargo bench -p strategy --bench tick_to_order` (add `-- --quick` for a short run).

use chrono::{DateTime, Utc};
use clock::WallClock;
use domain::broker::{Broker, BrokerConnection, BrokerError, BrokerOrderSnapshot};
use domain::calendar::TradingCalendar;
use domain::order::{Order, OrderId};
use domain::risk::{RiskLimits, SymbolLimits};
use domain::Instruments;
use hdrhistogram::Histogram;
use market_sim::{SimConfig, SimMarket};
use order_manager::{Actor, OrderManager};
use paper_broker::PaperBroker;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// The allocator of the `tradingsystem` binary, so the numbers are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct TimedBroker {
    inner: Arc<PaperBroker>,
    accepted: Mutex<HashMap<String, chrono::DateTime<Utc>>>,
}

impl Broker for TimedBroker {
    fn name(&self) -> &'static str {
        "paper"
    }
    fn connection(&self) -> BrokerConnection {
        self.inner.connection()
    }
    fn submit(&self, order: &Order) -> Result<(), BrokerError> {
        let r = self.inner.submit(order);
        let at = Utc::now();
        if let Some(c) = &order.client_order_id {
            self.accepted.lock().unwrap_or_else(|e| e.into_inner()).insert(c.clone(), at);
        }
        r
    }
    fn cancel(&self, order_id: OrderId) -> Result<(), BrokerError> {
        self.inner.cancel(order_id)
    }
    fn replace(&self, _: &Order, _: &domain::order::Amendment) -> Result<(), BrokerError> {
        Ok(())
    }
    fn working_orders(&self) -> Vec<BrokerOrderSnapshot> {
        self.inner.working_orders()
    }
}

/// Per trade id: when the feed received it, and when the market printed it.
type Stamps = HashMap<u64, (DateTime<Utc>, DateTime<Utc>)>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// The strategy runs on Data Capture's thread (`Runner::inline`).
    Inline,
    /// The strategy reads the bus on its own task (`Runner::spawn`), as one in another process would.
    Bus,
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: usize = if quick { 1_000 } else { 10_000 };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for mode in [Mode::Inline, Mode::Bus] {
        rt.block_on(run(mode, n));
    }
}

async fn run(mode: Mode, n: usize) {
    let rate = 1_000.0; // trades per second
    let base = std::env::var("TS_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(&base).expect("tempdir");
    let instruments = Instruments::b3_defaults(Utc::now().date_naive());
    let market = SimMarket::new(instruments.clone(), SimConfig::default());
    market.warm_up(Utc::now());
    let (oms, report) = OrderManager::recover(
        &dir.path().join("oms.journal"),
        instruments.clone(),
        TradingCalendar::Continuous,
        Arc::new(WallClock),
    )
    .expect("journal");
    let (paper, events) =
        PaperBroker::start(market.clone(), TradingCalendar::Continuous, Vec::new(), clock::WallClock::shared());
    let broker = Arc::new(TimedBroker { inner: paper, accepted: Mutex::new(HashMap::new()) });
    oms.attach_broker(broker.clone(), events, &report).await.expect("attach");
    let mut limits = RiskLimits { max_orders_per_second: 100_000, ..RiskLimits::default() };
    limits.symbols.insert(
        domain::Symbol::lit("PETR4"),
        SymbolLimits { max_order_qty: None, position_limit: Some(domain::Qty(1_000_000_000)) },
    );
    oms.set_limits(limits, "benchmark", &Actor::new("bench")).await.expect("limits");
    let bus = bus::Bus::new();
    // When the feed received each trade, and when the market printed it.
    let received: Arc<Mutex<Stamps>> = Arc::default();
    let seen = received.clone();
    let record: data_capture::TradeTap = Arc::new(move |t: &market_data::Trade| {
        if t.symbol == "PETR4" {
            seen.lock().unwrap_or_else(|e| e.into_inner()).insert(t.trade_id, (t.receive_ts, t.exchange_ts));
        }
    });
    // Marks for the price band, inline as in serve.
    let marks = oms.clone();
    let mark: data_capture::TradeTap =
        Arc::new(move |t: &market_data::Trade| marks.on_market_trade(&t.symbol, t.price));
    let dc =
        data_capture::DataCapture::start_sim(&market, bus.clone(), 0, vec![mark, record], clock::WallClock::shared());
    let ins = instruments.get("PETR4").expect("PETR4").clone();
    let responder = strategy::Responder {
        symbol: domain::Symbol::lit("PETR4"),
        offset_bps: 300,
        tick: ins.tick_size,
        lot: ins.lot,
    };
    let runner = match mode {
        Mode::Inline => {
            strategy::Runner::inline(&dc, oms.clone(), "responder", responder);
            None
        }
        Mode::Bus => Some(
            strategy::Runner::spawn(&bus, &["md.trades.PETR4".into()], oms.clone(), "responder", responder)
                .expect("runner"),
        ),
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut printed = 0usize;
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    while printed < n {
        interval.tick().await;
        printed += market.step("PETR4", Utc::now()).len();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted = broker.accepted.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let received = received.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut from_receive = Histogram::<u64>::new(3).expect("hist");
    let mut from_print = Histogram::<u64>::new(3).expect("hist");
    for (id, (recv, print)) in &received {
        if let Some(at) = accepted.get(&format!("t{id}")) {
            let ns = |from: DateTime<Utc>| (*at - from).num_nanoseconds().unwrap_or(0).max(0) as u64;
            from_receive.record(ns(*recv)).expect("record");
            from_print.record(ns(*print)).expect("record");
        }
    }
    let us = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let line = |h: &Histogram<u64>| {
        format!(
            "P50 {:.1} µs P99 {:.1} µs P99.9 {:.1} µs max {:.1} µs",
            us(h, 0.5),
            us(h, 0.99),
            us(h, 0.999),
            us(h, 1.0)
        )
    };
    let name = if mode == Mode::Inline { "inline strategy" } else { "strategy on the bus" };
    println!("tick-to-order, {name}, {} of {printed} trades answered at {rate:.0} trades/s:", from_receive.len());
    println!("  feed receive → broker accept: {}", line(&from_receive));
    println!("  market print → broker accept: {}", line(&from_print));
    if std::env::var("TS_BENCH_DEBUG").is_ok() {
        let (orders, _) = oms.list(&order_manager::OrderFilter { limit: 100_000, ..Default::default() });
        let mut codes: HashMap<String, usize> = HashMap::new();
        for o in orders {
            *codes.entry(format!("{}/{}", o.status, o.reject_code.unwrap_or_default())).or_default() += 1;
        }
        println!("orders by status/reject code: {codes:?}");
    }
    if let Some(r) = runner {
        r.abort();
    }
    oms.shutdown();
}
