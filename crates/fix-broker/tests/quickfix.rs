//! The FIX adapter and the Order Manager against QuickFIX acting as the broker (`peer/quickfix_broker.py`).
//!
//! Needs Python's `quickfix` package; without it the tests say they were skipped, unless `TS_REQUIRE_QUICKFIX` is
//! set, when its absence is a failure.

mod peer;

use chrono::Utc;
use clock::WallClock;
use domain::calendar::TradingCalendar;
use domain::order::{Order, OrderId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce};
use domain::{Instruments, Price, Qty, Symbol};
use fix_broker::{FixBroker, FixSettings};
use order_manager::{Actor, Modify, OrderManager};
use peer::{quickfix_available, Peer};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn settings(port: u16) -> FixSettings {
    let text = format!(
        "host = \"127.0.0.1\"\nport = {port}\nsender_comp_id = \"TS\"\ntarget_comp_id = \"BROKER\"\n\
         heartbeat_secs = 5\naccount = \"ACC1\"\nreconnect_min_ms = 100\nreconnect_max_ms = 400\n"
    );
    toml::from_str(&text).unwrap()
}

/// The Order Manager with the FIX adapter as its broker, journaling under `data`.
struct Desk {
    oms: OrderManager,
    broker: Arc<FixBroker>,
}

async fn open(data: &Path, port: u16) -> Desk {
    let instruments = Instruments::b3_defaults(Utc::now().date_naive());
    let (oms, report) =
        OrderManager::recover(&data.join("oms.journal"), instruments, TradingCalendar::Continuous, Arc::new(WallClock))
            .unwrap();
    oms.on_market_trade("PETR4", Price::parse_decimal("38").unwrap());
    let (broker, events) = FixBroker::start(&settings(port), data, oms.open_orders(), Arc::new(WallClock)).unwrap();
    oms.attach_broker(broker.clone(), events, &report).await.unwrap();
    let desk = Desk { oms, broker };
    desk.until("the session logs on", |d| d.broker.session().is_logged_on()).await;
    desk
}

impl Desk {
    async fn until(&self, what: &str, cond: impl Fn(&Desk) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}; session {:?}",
                self.broker.session().info()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn order_until(&self, id: OrderId, what: &str, cond: impl Fn(&Order) -> bool) -> Order {
        self.until(what, |d| d.oms.get(id).is_some_and(|o| cond(&o))).await;
        self.oms.get(id).unwrap()
    }

    async fn submit(&self, req: OrderRequest) -> OrderId {
        match self.oms.submit(req, &Actor::new("trader")).await {
            Ok(out) => out.order().id,
            Err(e) => panic!("refused: {e}"),
        }
    }

    /// Every message the broker has sent so far has been processed here.
    async fn caught_up(&self, peer: &mut Peer) {
        let sent = peer.cmd(json!({"cmd": "status"}))["next_sender"].as_u64().unwrap();
        self.until("every broker message is processed", |d| d.broker.session().info().next_target_seq >= sent).await;
    }

    fn stop(self) {
        self.broker.stop();
        self.oms.shutdown();
    }
}

/// QuickFIX as the broker (orders above `size_limit` rejected, PETR4 at 38.00) and the Order Manager logged on to
/// it; `None` when quickfix is not installed (the test says it skipped).
struct AtQuickfix {
    peer: Peer,
    desk: Desk,
    data: tempfile::TempDir,
    peer_dir: tempfile::TempDir,
}

async fn at_quickfix(size_limit: u64) -> Option<AtQuickfix> {
    if !quickfix_available() {
        return None;
    }
    let (peer_dir, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut peer = Peer::start(peer_dir.path(), size_limit);
    peer.price("PETR4", "38.00");
    let desk = open(data.path(), peer.port).await;
    Some(AtQuickfix { peer, desk, data, peer_dir })
}

fn req(side: Side, order_type: OrderType, qty: i64, price: Option<&str>, stop: Option<&str>) -> OrderRequest {
    let p = |s: &str| Price::parse_decimal(s).unwrap();
    let mut r = OrderRequest::new(Symbol::lit("PETR4"), side, order_type, Qty(qty), price.map(p));
    r.stop_price = stop.map(p);
    r
}

fn tif(mut r: OrderRequest, t: TimeInForce) -> OrderRequest {
    r.time_in_force = t;
    r
}

fn fix_log(data: &Path) -> String {
    let dir: PathBuf = data.join("fix/TS-BROKER/log");
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_type_lives_its_whole_life_at_quickfix() {
    let Some(AtQuickfix { mut peer, desk, data, peer_dir: _peer_dir }) = at_quickfix(100_000).await else { return };

    // Market: acknowledged, then filled in two parts.
    let id = desk.submit(req(Side::Buy, OrderType::Market, 200, None, None)).await;
    let o = desk.order_until(id, "the market order fills", |o| o.status == OrderStatus::Filled).await;
    assert_eq!((o.fills.len(), o.filled_quantity), (2, Qty(200)));
    assert!(o.broker_order_id.as_deref().is_some_and(|b| b.starts_with('O')), "{o:?}");

    // Limit: rests until the market reaches it.
    let id = desk.submit(req(Side::Buy, OrderType::Limit, 100, Some("37.50"), None)).await;
    desk.order_until(id, "the limit order rests", |o| o.status == OrderStatus::New).await;
    peer.price("PETR4", "37.50");
    let o = desk.order_until(id, "the limit order fills", |o| o.status == OrderStatus::Filled).await;
    assert_eq!(o.fills.iter().map(|f| f.price).collect::<Vec<_>>(), vec![Price(375_000), Price(375_000)]);

    // Stop: triggers when the market trades through it.
    desk.oms.on_market_trade("PETR4", Price::parse_decimal("37.50").unwrap());
    let id = desk.submit(req(Side::Sell, OrderType::Stop, 100, None, Some("37.00"))).await;
    desk.order_until(id, "the stop rests", |o| o.status == OrderStatus::New).await;
    peer.price("PETR4", "36.90");
    desk.order_until(id, "the stop fills", |o| o.status == OrderStatus::Filled).await;

    // Stop-limit: triggers, then trades within its limit.
    desk.oms.on_market_trade("PETR4", Price::parse_decimal("36.90").unwrap());
    let id = desk.submit(req(Side::Buy, OrderType::StopLimit, 100, Some("37.10"), Some("37.00"))).await;
    desk.order_until(id, "the stop-limit rests", |o| o.status == OrderStatus::New).await;
    peer.price("PETR4", "37.05");
    desk.order_until(id, "the stop-limit fills", |o| o.status == OrderStatus::Filled).await;

    // IOC: what trades at once, the rest canceled.
    let id = desk.submit(tif(req(Side::Buy, OrderType::Limit, 300, Some("38.00"), None), TimeInForce::Ioc)).await;
    let o = desk.order_until(id, "the IOC ends", |o| o.status.is_terminal()).await;
    assert_eq!((o.status, o.filled_quantity), (OrderStatus::Canceled, Qty(150)));

    // FOK: all or nothing.
    let id = desk.submit(tif(req(Side::Buy, OrderType::Limit, 100, Some("36.00"), None), TimeInForce::Fok)).await;
    let o = desk.order_until(id, "the unfillable FOK ends", |o| o.status.is_terminal()).await;
    assert_eq!((o.status, o.filled_quantity), (OrderStatus::Canceled, Qty(0)));
    let id = desk.submit(tif(req(Side::Buy, OrderType::Limit, 100, Some("38.00"), None), TimeInForce::Fok)).await;
    let o = desk.order_until(id, "the FOK fills", |o| o.status.is_terminal()).await;
    assert_eq!((o.status, o.filled_quantity, o.fills.len()), (OrderStatus::Filled, Qty(100), 1));

    // GTC: rests, then canceled by us.
    let id = desk.submit(tif(req(Side::Buy, OrderType::Limit, 100, Some("34.00"), None), TimeInForce::Gtc)).await;
    desk.order_until(id, "the GTC rests", |o| o.status == OrderStatus::New).await;
    desk.oms.cancel(id, &Actor::new("trader")).await.unwrap();
    desk.order_until(id, "the GTC is canceled", |o| o.status == OrderStatus::Canceled).await;
    let (_, at_broker) = peer.order_of(id);
    assert_eq!(at_broker["status"], "4");

    // DAY: expired by the broker at the end of the day.
    let id = desk.submit(req(Side::Sell, OrderType::Limit, 100, Some("40.00"), None)).await;
    desk.order_until(id, "the DAY order rests", |o| o.status == OrderStatus::New).await;
    peer.cmd(json!({"cmd": "expire"}));
    desk.order_until(id, "the DAY order expires", |o| o.status == OrderStatus::Expired).await;
    let (_, at_broker) = peer.order_of(id);
    assert_eq!(at_broker["account"], "ACC1");

    // Positions add up: +200 +100 -100 +100 +150 +100.
    desk.caught_up(&mut peer).await;
    let net = desk.oms.positions().positions.iter().find(|p| p.symbol.as_str() == "PETR4").map(|p| p.quantity);
    assert_eq!(net, Some(Qty(550)));
    let log = fix_log(data.path());
    assert!(log.contains("35=D|") && log.contains("207=BVMF|") && log.contains("35=8|"), "the FIX log has both ways");
    desk.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_cancel_rejects_and_a_lost_fill_found_by_status() {
    let Some(AtQuickfix { mut peer, desk, data: _data, peer_dir: _peer_dir }) = at_quickfix(1000).await else { return };

    let id = desk.submit(req(Side::Buy, OrderType::Limit, 2000, Some("37.00"), None)).await;
    let o = desk.order_until(id, "the broker rejects the order", |o| o.status == OrderStatus::Rejected).await;
    assert_eq!(o.reject_code.as_deref(), Some("BROKER_REJECT_3"));
    assert!(o.reject_reason.as_deref().is_some_and(|r| r.contains("size limit")), "{o:?}");

    // The broker fills the order but its report is lost; our cancel arrives too late.
    let id = desk.submit(req(Side::Buy, OrderType::Limit, 100, Some("37.00"), None)).await;
    desk.order_until(id, "the order rests", |o| o.status == OrderStatus::New).await;
    let (broker_id, _) = peer.order_of(id);
    peer.cmd(json!({"cmd": "fill", "order_id": broker_id, "qty": 100, "price": "37.00", "report": false}));
    desk.oms.cancel(id, &Actor::new("trader")).await.unwrap();
    let o = desk.order_until(id, "the cancel is rejected", |o| o.status == OrderStatus::New).await;
    assert_eq!(o.filled_quantity, Qty(0));

    // The next logon's status request finds the execution: booked once, at the broker's price.
    peer.cmd(json!({"cmd": "disconnect"}));
    let o = desk.order_until(id, "the lost fill is found", |o| o.status == OrderStatus::Filled).await;
    assert_eq!((o.fills.len(), o.fills[0].price, o.fills[0].quantity), (1, Price(370_000), Qty(100)));
    assert!(o.fills[0].exec_id.starts_with("status:"), "{:?}", o.fills[0]);
    desk.caught_up(&mut peer).await;
    assert_eq!(desk.oms.get(id).unwrap().fills.len(), 1);
    desk.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_is_closed_by_a_gap_fill() {
    let Some(AtQuickfix { mut peer, desk, data, peer_dir: _peer_dir }) = at_quickfix(100_000).await else { return };
    // The broker jumps five numbers: nothing was ever sent under them, so its answer to our ResendRequest is a
    // SequenceReset-GapFill, and the acknowledgement that revealed the gap comes again as a possible duplicate.
    peer.cmd(json!({"cmd": "skip", "n": 5}));
    let id = desk.submit(req(Side::Buy, OrderType::Limit, 100, Some("37.00"), None)).await;
    desk.order_until(id, "the order is acknowledged after the gap", |o| o.status == OrderStatus::New).await;
    desk.caught_up(&mut peer).await;
    let log = fix_log(data.path());
    assert!(log.contains("35=2|") && log.contains("123=Y|"), "a ResendRequest and a gap fill:\n{log}");
    assert!(desk.broker.session().is_logged_on());
    desk.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_during_an_outage_are_resent_and_booked_once() {
    let Some(AtQuickfix { mut peer, desk, data, peer_dir: _peer_dir }) = at_quickfix(100_000).await else { return };
    let a = desk.submit(req(Side::Buy, OrderType::Limit, 300, Some("37.00"), None)).await;
    let b = desk.submit(req(Side::Sell, OrderType::Limit, 200, Some("39.00"), None)).await;
    desk.order_until(a, "a rests", |o| o.status == OrderStatus::New).await;
    desk.order_until(b, "b rests", |o| o.status == OrderStatus::New).await;

    // The connection drops and the broker refuses logons for a while; meanwhile both orders trade.
    peer.cmd(json!({"cmd": "refuse_logons", "on": true}));
    peer.cmd(json!({"cmd": "disconnect"}));
    desk.until("the session notices", |d| !d.broker.session().is_logged_on()).await;
    let refused = desk.oms.submit(req(Side::Buy, OrderType::Limit, 100, Some("37.00"), None), &Actor::new("t")).await;
    assert!(refused.is_err(), "no new orders while routing is down");
    let (a_ref, _) = peer.order_of(a);
    let (b_ref, _) = peer.order_of(b);
    peer.cmd(json!({"cmd": "fill", "order_id": a_ref, "qty": 100, "price": "37.00"}));
    peer.cmd(json!({"cmd": "fill", "order_id": a_ref, "qty": 200, "price": "36.95"}));
    peer.cmd(json!({"cmd": "fill", "order_id": b_ref, "qty": 100, "price": "39.00"}));
    peer.cmd(json!({"cmd": "refuse_logons", "on": false}));

    // Reconnect: the gap is resent (PossDup), status requests confirm; every execution is booked once.
    let oa = desk.order_until(a, "a is filled", |o| o.status == OrderStatus::Filled).await;
    let ob = desk.order_until(b, "b is partly filled", |o| o.filled_quantity == Qty(100)).await;
    desk.caught_up(&mut peer).await;
    let oa_now = desk.oms.get(a).unwrap();
    let ob_now = desk.oms.get(b).unwrap();
    assert_eq!((oa_now.fills.len(), ob_now.fills.len()), (2, 1), "{oa:?} {ob:?}");
    assert!(oa_now.fills.iter().chain(&ob_now.fills).all(|f| !f.exec_id.starts_with("status:")), "real reports");
    let net = desk.oms.positions().positions.iter().find(|p| p.symbol.as_str() == "PETR4").map(|p| p.quantity);
    assert_eq!(net, Some(Qty(200)));
    let log = fix_log(data.path());
    assert!(log.contains("43=Y|"), "the outage's reports came as possible duplicates");
    assert!(log.contains("35=H|"), "status requests after the logon");
    desk.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_sequence_numbers_and_the_working_orders() {
    let Some(AtQuickfix { mut peer, desk, data, peer_dir: _peer_dir }) = at_quickfix(100_000).await else { return };
    let id = desk.submit(req(Side::Buy, OrderType::Limit, 100, Some("37.00"), None)).await;
    desk.order_until(id, "the order rests", |o| o.status == OrderStatus::New).await;
    desk.caught_up(&mut peer).await;
    let before = desk.broker.session().info();
    desk.stop();
    peer.order_of(id);
    // Wait for the broker to see the logout before we come back.
    let deadline = Instant::now() + Duration::from_secs(20);
    while peer.cmd(json!({"cmd": "status"}))["logged_on"].as_bool() == Some(true) {
        assert!(Instant::now() < deadline, "the broker never saw our logout");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let desk = open(data.path(), peer.port).await;
    let after = desk.broker.session().info();
    // The store resumed where it stopped: the logout and its answer are the only numbers used in between.
    assert!(after.next_sender_seq > before.next_sender_seq && after.next_sender_seq <= before.next_sender_seq + 4);
    let log = fix_log(data.path());
    let logons: Vec<&str> = log.lines().filter(|l| l.contains(" > ") && l.contains("|35=A|")).collect();
    assert_eq!(logons.len(), 2);
    assert!(!logons[1].contains("141=Y"), "no reset on the second logon");
    // The working order is still ours to cancel: its ClOrdID was kept.
    desk.oms.cancel(id, &Actor::new("trader")).await.unwrap();
    desk.order_until(id, "canceled after the restart", |o| o.status == OrderStatus::Canceled).await;
    desk.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modify_is_a_cancel_replace_at_quickfix() {
    let Some(AtQuickfix { mut peer, desk, data, peer_dir: _peer_dir }) = at_quickfix(1000).await else { return };
    let trader = Actor::new("trader");
    let px = |s: &str| Some(Price::parse_decimal(s).unwrap());

    // New terms, confirmed: the order is known at the broker by its new ClOrdID.
    let id = desk.submit(req(Side::Buy, OrderType::Limit, 100, Some("37.00"), None)).await;
    desk.order_until(id, "the order rests", |o| o.status == OrderStatus::New).await;
    let change = Modify { quantity: Some(Qty(300)), price: px("37.20"), stop_price: None };
    desk.oms.modify(id, change, &trader).await.unwrap();
    let o = desk.order_until(id, "replaced", |o| o.quantity == Qty(300) && o.pending_replace.is_none()).await;
    assert_eq!((o.status, o.price), (OrderStatus::New, px("37.20")));
    let (_, at_broker) = peer.order_of(id);
    assert_eq!((at_broker["qty"].as_i64(), at_broker["price"].as_str()), (Some(300), Some("37.20")));
    assert!(at_broker["cl_ord_id"].as_str().is_some_and(|c| c.ends_with(".1")), "{at_broker}");

    // Refused by the broker: the order keeps its terms.
    let change = Modify { quantity: Some(Qty(2000)), ..Modify::default() };
    desk.oms.modify(id, change, &trader).await.unwrap();
    let o = desk.order_until(id, "the replace is rejected", |o| o.pending_replace.is_none()).await;
    assert_eq!((o.quantity, o.price), (Qty(300), px("37.20")));

    // A price that crosses the market trades at once.
    let change = Modify { price: px("38.00"), ..Modify::default() };
    desk.oms.modify(id, change, &trader).await.unwrap();
    let o = desk.order_until(id, "filled after the replace", |o| o.status == OrderStatus::Filled).await;
    assert_eq!((o.filled_quantity, o.price), (Qty(300), px("38.00")));

    // A modified order is canceled under its latest ClOrdID.
    let id = desk.submit(req(Side::Sell, OrderType::Limit, 100, Some("39.00"), None)).await;
    desk.order_until(id, "the order rests", |o| o.status == OrderStatus::New).await;
    desk.oms.modify(id, Modify { price: px("39.50"), ..Modify::default() }, &trader).await.unwrap();
    desk.order_until(id, "replaced", |o| o.price == px("39.50") && o.pending_replace.is_none()).await;
    desk.oms.cancel(id, &trader).await.unwrap();
    desk.order_until(id, "canceled", |o| o.status == OrderStatus::Canceled).await;
    let log = fix_log(data.path());
    assert!(log.contains("35=G|") && log.contains("150=5|") && log.contains("434=2|"), "G, Replaced, replace reject");
    desk.stop();
}
