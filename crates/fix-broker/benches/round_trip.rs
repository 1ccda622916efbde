//! Order → ExecutionReport round trip: the FIX adapter against QuickFIX on loopback, and the paper broker, measured
//! in the same run through the same `Broker` trait: the time from `submit` to the acknowledgement arriving as a
//! broker event. `cargo bench -p fix-broker --bench round_trip` (needs Python's quickfix); results in BENCHMARKS.md.

#[path = "../tests/peer/mod.rs"]
mod peer;

use chrono::Utc;
use clock::WallClock;
use domain::broker::{Broker, BrokerEvent};
use domain::calendar::TradingCalendar;
use domain::order::{Order, OrderEvent, OrderRequest, OrderType, Side};
use domain::{AccountId, Instruments, Price, Qty, Symbol};
use fix_broker::{FixBroker, FixSettings};
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

const ORDERS: u64 = 5_000;

fn order(id: u64) -> Order {
    // Far below the market: it rests, so the acknowledgement is the only report.
    let req = OrderRequest::new(Symbol::lit("PETR4"), Side::Buy, OrderType::Limit, Qty(100), Some(Price(200_000)));
    Order::new(id, &AccountId::new("bench"), &req, Utc::now())
}

async fn round_trips(name: &str, broker: &dyn Broker, events: &mut UnboundedReceiver<BrokerEvent>, first_id: u64) {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    // Warm-up, then measured orders one at a time.
    for i in 0..ORDERS + 500 {
        let o = order(first_id + i);
        let t = Instant::now();
        broker.submit(&o).expect("submitted");
        loop {
            let ev =
                tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("an answer").expect("open");
            if ev.order_id == o.id && matches!(ev.event, OrderEvent::Accepted { .. }) {
                break;
            }
        }
        if i >= 500 {
            h.record(t.elapsed().as_nanos() as u64).expect("recorded");
        }
    }
    println!(
        "{name:<32} P50 {:>7.1} µs  P99 {:>7.1} µs  P99.9 {:>7.1} µs  max {:>7.1} µs  ({} orders)",
        h.value_at_quantile(0.50) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        h.value_at_quantile(0.999) as f64 / 1e3,
        h.max() as f64 / 1e3,
        h.len()
    );
}

/// The least a counterparty can do: answer the Logon, and every NewOrderSingle with an acknowledgement, on one
/// blocking thread. What is left of the round trip is our own stack (session thread, store, log, adapter).
fn minimal_acceptor() -> u16 {
    use fix::codec::{Decoder, MessageBuilder};
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let _ = stream.set_nodelay(true);
        let (mut decoder, mut buf, mut seq) = (Decoder::new(), vec![0u8; 65536], 1u64);
        loop {
            let Ok(n) = stream.read(&mut buf) else { return };
            if n == 0 {
                return;
            }
            decoder.extend(&buf[..n]);
            let mut out = Vec::new();
            while let Ok(Some(m)) = decoder.next_message() {
                let reply = |kind: &str, seq: u64| {
                    let mut r = MessageBuilder::new(kind);
                    r.field(49, "BROKER").field(56, "TS").int(34, seq).field(52, "20261206-12:00:00.000");
                    r
                };
                match m.msg_type() {
                    b"A" => {
                        let mut r = reply("A", seq);
                        r.int(98, 0).int(108, 30);
                        out.extend(r.finish());
                    }
                    b"D" => {
                        let mut r = reply("8", seq);
                        let cl = m.get(11).unwrap_or_default();
                        r.field(37, format!("O{seq}")).field(11, cl).field(17, format!("E{seq}"));
                        r.field(150, "0").field(39, "0").field(55, "PETR4").field(54, "1");
                        r.int(151, 100).int(14, 0).field(6, "0");
                        out.extend(r.finish());
                    }
                    _ => continue,
                }
                seq += 1;
            }
            if stream.write_all(&out).is_err() {
                return;
            }
        }
    });
    port
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !peer::quickfix_available() {
        return;
    }
    let (peer_dir, data) = (tempfile::tempdir().expect("tmp"), tempfile::tempdir().expect("tmp"));
    let mut quickfix = peer::Peer::start(peer_dir.path(), 1_000_000);
    quickfix.price("PETR4", "38.00");
    let settings: FixSettings = toml::from_str(&format!(
        "host = \"127.0.0.1\"\nport = {}\nsender_comp_id = \"TS\"\ntarget_comp_id = \"BROKER\"\n",
        quickfix.port
    ))
    .expect("settings");
    let (fix, mut fix_events) =
        FixBroker::start(&settings, data.path(), Vec::new(), WallClock::shared()).expect("FIX broker");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fix.session().is_logged_on() {
        assert!(Instant::now() < deadline, "the FIX session did not log on");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    round_trips("FIX 4.4 ↔ QuickFIX (loopback)", fix.as_ref(), &mut fix_events, 1).await;
    fix.stop();

    let minimal = tempfile::tempdir().expect("tmp");
    let settings = FixSettings { port: minimal_acceptor(), ..settings };
    let (ours, mut our_events) =
        FixBroker::start(&settings, minimal.path(), Vec::new(), WallClock::shared()).expect("FIX broker");
    while !ours.session().is_logged_on() {
        assert!(Instant::now() < deadline + Duration::from_secs(20), "the FIX session did not log on");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    round_trips("FIX 4.4 ↔ minimal Rust acceptor", ours.as_ref(), &mut our_events, 100_000).await;
    ours.stop();

    let instruments = Instruments::b3_defaults(Utc::now().date_naive());
    let market = market_sim::SimMarket::new(instruments, market_sim::SimConfig::default());
    let (paper, mut paper_events) =
        paper_broker::PaperBroker::start(market, TradingCalendar::Continuous, Vec::new(), Arc::new(WallClock));
    round_trips("paper broker (in process)", paper.as_ref(), &mut paper_events, 1_000_000).await;
}
