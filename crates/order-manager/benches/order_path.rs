//! The order path in-process: validation → risk → journal (fsync, group commit) → paper broker.
//!
//! `cargo bench -p order-manager --bench order_path` prints:
//! - throughput: orders/s with many concurrent submitters, each order durable before its submit returns;
//! - latency of one order at a time: submit → broker accept, and submit → durable acknowledgement (P50/P99/P99.9).
//!
//! The journal lives in `TS_BENCH_DIR` (default: the system temp dir), so the fsyncs hit a real disk.

use chrono::Utc;
use clock::WallClock;
use domain::broker::{Broker, BrokerConnection, BrokerError, BrokerOrderSnapshot};
use domain::calendar::TradingCalendar;
use domain::order::{Order, OrderId, OrderRequest, OrderType, PositionType, Side, TimeInForce};
use domain::risk::{RiskLimits, SymbolLimits};
use domain::{Instruments, Price, Qty};
use hdrhistogram::Histogram;
use market_sim::{SimConfig, SimMarket};
use order_manager::{Actor, OrderManager};
use paper_broker::PaperBroker;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Wraps the paper broker to timestamp the moment an order is accepted locally.
struct TimedBroker {
    inner: Arc<PaperBroker>,
    last_accept: Mutex<Option<Instant>>,
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
        *self.last_accept.lock().unwrap() = Some(Instant::now());
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

fn request(last: Price, i: usize) -> OrderRequest {
    // IOC limits 5 % away from the market: accepted, risk-checked, routed, then expired by the broker, so nothing
    // accumulates and every order produces three journal records (submitted, accepted, expired).
    let side = if i.is_multiple_of(2) { Side::Buy } else { Side::Sell };
    let away = last.units() / 20 / 100 * 100;
    let price = match side {
        Side::Buy => Price(last.units() - away),
        Side::Sell => Price(last.units() + away),
    };
    OrderRequest {
        symbol: domain::Symbol::lit("PETR4"),
        side,
        order_type: OrderType::Limit,
        quantity: Qty(100),
        price: Some(price),
        stop_price: None,
        time_in_force: TimeInForce::Ioc,
        client_order_id: None,
        position_type: PositionType::Daytrade,
        justification: None,
        source: Some("bench".into()),
    }
}

async fn setup(dir: &std::path::Path) -> (OrderManager, Arc<TimedBroker>, Price) {
    let instruments = Instruments::b3_defaults(Utc::now().date_naive());
    let market = SimMarket::new(instruments.clone(), SimConfig::default());
    market.warm_up(Utc::now());
    let (oms, report) =
        OrderManager::recover(&dir.join("oms.journal"), instruments, TradingCalendar::Continuous, Arc::new(WallClock))
            .expect("journal");
    let last = market.last_price("PETR4").expect("price");
    oms.on_market_trade("PETR4", last);
    let (paper, events) =
        PaperBroker::start(market, TradingCalendar::Continuous, Vec::new(), clock::WallClock::shared());
    let broker = Arc::new(TimedBroker { inner: paper, last_accept: Mutex::new(None) });
    oms.attach_broker(broker.clone(), events, &report).await.expect("attach");
    let mut limits = RiskLimits { max_orders_per_second: 100_000, ..RiskLimits::default() };
    limits.symbols.insert(
        domain::Symbol::lit("PETR4"),
        SymbolLimits { max_order_qty: None, position_limit: Some(Qty(1_000_000_000)) },
    );
    oms.set_limits(limits, "benchmark", &Actor::new("bench")).await.expect("limits");
    (oms, broker, last)
}

fn pct(h: &Histogram<u64>, q: f64) -> String {
    format!("{:.1} µs", h.value_at_quantile(q) as f64 / 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let base = std::env::var("TS_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| std::env::temp_dir());
    std::fs::create_dir_all(&base).expect("bench dir");
    let quick = std::env::args().any(|a| a == "--quick");
    let paced = std::env::args().any(|a| a == "--paced");

    rt.block_on(async {
        // Throughput.
        let dir = tempfile::tempdir_in(&base).expect("tempdir");
        let (oms, _broker, last) = setup(dir.path()).await;
        let tasks = 128;
        let per_task = if quick { 200 } else { 2_000 };
        let started = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let oms = oms.clone();
            handles.push(tokio::spawn(async move {
                let actor = Actor::new(format!("acct{t}"));
                for i in 0..per_task {
                    oms.submit(request(last, i), &actor).await.expect("submit");
                }
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
        let elapsed = started.elapsed();
        let n = tasks * per_task;
        // Let the broker's expiries land before counting records.
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!(
            "throughput: {n} orders by {tasks} concurrent submitters in {:.2} s = {:.0} orders/s durable ({} journal records, fsync'd with group commit)",
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
            oms.journal().durable_seq()
        );
        oms.shutdown();

        // Latency, one order at a time.
        let dir = tempfile::tempdir_in(&base).expect("tempdir");
        let (oms, broker, last) = setup(dir.path()).await;
        let actor = Actor::new("latency");
        let mut to_accept = Histogram::<u64>::new(3).expect("hist");
        let mut to_durable = Histogram::<u64>::new(3).expect("hist");
        let n = if quick { 1_000 } else { 20_000 };
        for i in 0..n + 1_000 {
            if paced {
                // Orders arriving one at a time with the previous one's broker events already processed.
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            let t0 = Instant::now();
            oms.submit(request(last, i), &actor).await.expect("submit");
            let done = t0.elapsed();
            let accepted = broker.last_accept.lock().unwrap().take().expect("routed");
            if i >= 1_000 {
                to_accept.record(accepted.duration_since(t0).as_nanos() as u64).expect("record");
                to_durable.record(done.as_nanos() as u64).expect("record");
            }
        }
        println!(
            "latency submit → risk → broker accept ({n} orders, sequential): P50 {} P99 {} P99.9 {} max {}",
            pct(&to_accept, 0.5),
            pct(&to_accept, 0.99),
            pct(&to_accept, 0.999),
            pct(&to_accept, 1.0)
        );
        println!(
            "latency submit → durable acknowledgement (includes one fsync): P50 {} P99 {} P99.9 {} max {}",
            pct(&to_durable, 0.5),
            pct(&to_durable, 0.99),
            pct(&to_durable, 0.999),
            pct(&to_durable, 1.0)
        );
        oms.shutdown();
    });
}
