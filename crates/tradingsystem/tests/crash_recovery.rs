//! SIGKILL in the middle of a stream of orders that are filling and moving positions: every acknowledged order
//! (with at least the fills its answer showed), positions that agree with the recovered fills, and the kill switch
//! come back after a restart on the same data dir.

mod common;

use common::Server;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Acknowledged orders: id → (rejection code if any, symbol, side, quantity, filled quantity in the answer).
type Acked = Arc<Mutex<BTreeMap<u64, (Option<String>, String, String, i64, i64)>>>;

async fn stream(
    s: Arc<Server>,
    token: String,
    worker: usize,
    acked: Acked,
    count: Arc<AtomicUsize>,
    stop_after: usize,
) {
    let symbols = ["PETR4", "VALE3", "ITUB4", "BBDC4"];
    for i in 0.. {
        if count.load(Ordering::SeqCst) >= stop_after {
            return;
        }
        let symbol = symbols[(worker + i) % symbols.len()];
        let side = if i % 3 == 2 { "SELL" } else { "BUY" };
        let body = json!({"symbol": symbol, "side": side, "type": "MARKET", "quantity": 100, "client_order_id": format!("w{worker}-{i}")});
        let r = match s.client.post(s.url("/api/v1/orders")).bearer_auth(&token).json(&body).send().await {
            Ok(r) => r,
            Err(_) => return, // the server is gone
        };
        let status = r.status().as_u16();
        let Ok(v) = r.json::<Value>().await else {
            return;
        };
        let (id, code, filled) = match status {
            201 | 200 => (v["id"].as_u64(), None, v["filled_quantity"].as_i64().unwrap_or(0)),
            403 => (v["error"]["details"]["order"]["id"].as_u64(), v["error"]["code"].as_str().map(String::from), 0),
            _ => (None, None, 0),
        };
        if let Some(id) = id {
            acked.lock().unwrap().insert(id, (code, symbol.to_string(), side.to_string(), 100, filled));
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn positions(s: &Server, token: &str) -> BTreeMap<String, (i64, f64)> {
    let (_, p) = s.get(token, "/api/v1/positions").await;
    p["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["symbol"].as_str().unwrap().to_string(),
                (x["quantity"].as_i64().unwrap(), x["realized_total"].as_f64().unwrap()),
            )
        })
        .collect()
}

/// Net position per symbol computed from every order's fills: what the positions must agree with.
async fn net_from_orders(s: &Server, token: &str) -> BTreeMap<String, i64> {
    let mut net = BTreeMap::new();
    let mut offset = 0;
    loop {
        let (_, page) = s.get(token, &format!("/api/v1/orders?limit=1000&offset={offset}")).await;
        let rows = page["data"].as_array().unwrap().clone();
        for o in &rows {
            let sign = if o["side"] == "BUY" { 1 } else { -1 };
            *net.entry(o["symbol"].as_str().unwrap().to_string()).or_insert(0) +=
                sign * o["filled_quantity"].as_i64().unwrap();
        }
        offset += rows.len();
        if rows.is_empty() || offset as u64 >= page["total"].as_u64().unwrap() {
            return net;
        }
    }
}

async fn check_all_acked_present(s: &Server, token: &str, acked: &Acked) {
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    for (id, (code, symbol, side, qty, filled)) in &acked {
        let (st, o) = s.get(token, &format!("/api/v1/orders/{id}")).await;
        assert_eq!(st, 200, "acknowledged order {id} lost after the crash");
        assert_eq!(
            (o["symbol"].as_str().unwrap(), o["side"].as_str().unwrap(), o["quantity"].as_i64().unwrap()),
            (symbol.as_str(), side.as_str(), *qty)
        );
        let recovered = o["filled_quantity"].as_i64().unwrap();
        assert!(recovered >= *filled, "order {id}: the answer showed {filled} filled, {recovered} came back");
        if let Some(code) = code {
            assert_eq!(o["status"], "REJECTED");
            assert_eq!(o["reject_code"].as_str(), Some(code.as_str()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let admin = server.admin().await;
    let trader = server.user(&admin, "streamer", "trader").await;
    let s = Arc::new(server.handle());
    let acked: Acked = Arc::default();

    let (st, _) = server
        .send(
            reqwest::Method::PUT,
            &admin,
            "/api/v1/risk/limits",
            json!({"reason": "crash test", "max_orders_per_second": 100000}),
        )
        .await;
    assert_eq!(st, 200);

    // Orders that trade, killed mid-flight: market orders are filling and positions moving when the process dies.
    let count = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(stream(s.clone(), trader.clone(), w, acked.clone(), count.clone(), usize::MAX)))
        .collect();
    while count.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill9();
    for w in workers {
        w.await.unwrap();
    }
    let n_acked = acked.lock().unwrap().len();
    assert!(n_acked >= 200, "{n_acked} acknowledged");
    let filled_in_answers = acked.lock().unwrap().values().filter(|a| a.4 > 0).count();
    assert!(filled_in_answers > 0, "orders were filling when the process died");

    // Restart on the same data dir: every acknowledged order and fill is back, positions agree with the fills.
    let mut server = Server::start(dir.path());
    let token = server.login("streamer", "password-123").await;
    check_all_acked_present(&server, &token, &acked).await;
    let before = positions(&server, &token).await;
    assert!(!before.is_empty());
    let net = net_from_orders(&server, &token).await;
    let quantities: BTreeMap<String, i64> =
        before.iter().map(|(k, v)| (k.clone(), v.0)).filter(|(_, q)| *q != 0).collect();
    assert_eq!(
        quantities,
        net.into_iter().filter(|(_, q)| *q != 0).collect(),
        "positions agree with the recovered fills"
    );

    // The kill switch survives a crash too.
    let (st, _) = server.post(&token, "/api/v1/risk/kill-switch", json!({"reason": "crash test"})).await;
    assert_eq!(st, 200);
    let before = positions(&server, &token).await;
    server.kill9();
    let server = Server::start(dir.path());
    let token = server.login("streamer", "password-123").await;
    check_all_acked_present(&server, &token, &acked).await;
    assert_eq!(positions(&server, &token).await, before, "positions come back exactly");
    let (_, status) = server.get(&token, "/api/v1/risk/status").await;
    assert_eq!(status["kill_switch"]["active"], true, "the kill switch survives the crash");
    assert_eq!(status["kill_switch"]["reason"], "crash test");

    // A torn tail (a record half-written at the moment of a crash) is cut back; nothing acknowledged is lost.
    let mut server = server;
    server.stop();
    let journal = dir.path().join("journal").join("oms.journal");
    let mut f = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{', b'"']).unwrap();
    drop(f);
    let server = Server::start(dir.path());
    let token = server.login("streamer", "password-123").await;
    check_all_acked_present(&server, &token, &acked).await;
    assert_eq!(positions(&server, &token).await, before);
    assert_eq!(server.get(&token, "/api/v1/risk/status").await.1["kill_switch"]["active"], true);
}
