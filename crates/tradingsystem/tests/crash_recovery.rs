//! SIGKILL in the middle of a stream of orders: every acknowledged order, the positions and the kill switch come
//! back after a restart on the same data dir.

mod common;

use common::{eventually, Server};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Acknowledged orders: id → (rejection code if any, symbol, side, quantity).
type Acked = Arc<Mutex<BTreeMap<u64, (Option<String>, String, String, i64)>>>;

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
        let (id, code) = match status {
            201 | 200 => (v["id"].as_u64(), None),
            403 => (v["error"]["details"]["order"]["id"].as_u64(), v["error"]["code"].as_str().map(String::from)),
            _ => (None, None),
        };
        if let Some(id) = id {
            acked.lock().unwrap().insert(id, (code, symbol.to_string(), side.to_string(), 100));
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

async fn check_all_acked_present(s: &Server, token: &str, acked: &Acked) {
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    for (id, (code, symbol, side, qty)) in &acked {
        let (st, o) = s.get(token, &format!("/api/v1/orders/{id}")).await;
        assert_eq!(st, 200, "acknowledged order {id} lost after the crash");
        assert_eq!(
            (o["symbol"].as_str().unwrap(), o["side"].as_str().unwrap(), o["quantity"].as_i64().unwrap()),
            (symbol.as_str(), side.as_str(), *qty)
        );
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

    // Phase 1: orders that trade.
    let count = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> =
        (0..4).map(|w| tokio::spawn(stream(s.clone(), trader.clone(), w, acked.clone(), count.clone(), 120))).collect();
    for w in workers {
        w.await.unwrap();
    }

    // The kill switch goes on; what traded is now final.
    let (st, _) = server.post(&trader, "/api/v1/risk/kill-switch", json!({"reason": "crash test"})).await;
    assert_eq!(st, 200);
    eventually(|| async {
        let (_, o) = server.get(&trader, "/api/v1/orders?status=PENDING_NEW,NEW,PARTIALLY_FILLED,PENDING_CANCEL").await;
        (o["total"] == 0).then_some(())
    })
    .await;
    let before = positions(&server, &trader).await;
    assert!(!before.is_empty());

    // Phase 2: a stream of orders (rejected by the kill switch, still acknowledged and recorded) killed mid-flight.
    let count = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(stream(s.clone(), trader.clone(), w + 10, acked.clone(), count.clone(), usize::MAX)))
        .collect();
    while count.load(Ordering::SeqCst) < 80 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill9();
    for w in workers {
        w.await.unwrap();
    }
    let n_acked = acked.lock().unwrap().len();
    assert!(n_acked >= 200, "{n_acked} acknowledged");

    // Restart on the same data dir.
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
