//! `serve` with several brokers: the paper broker for most accounts and QuickFIX (over FIX 4.4) for one; orders
//! route by account, positions and the kill switch are per account and global, and `TS_BROKER=fix:PATH` is the
//! shortcut for one FIX broker.

mod common;
#[path = "../../fix-broker/tests/peer/mod.rs"]
mod peer;

use common::{eventually, Server};
use peer::{quickfix_available, Peer};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::Path;

fn fix_settings(port: u16, sender: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {port}\nsender_comp_id = \"{sender}\"\ntarget_comp_id = \"BROKER\"\n\
         heartbeat_secs = 5\nreconnect_min_ms = 100\nreconnect_max_ms = 400\n"
    )
}

/// The simulated market's last PETR4 price, as the broker's market too (risk checks orders against it).
async fn last_price(s: &Server, token: &str) -> f64 {
    eventually(|| async {
        let (st, t) = s.get(token, "/api/v1/market/trades?symbol=PETR4&limit=1").await;
        (st == 200).then(|| t["data"][0]["price"].as_f64()).flatten()
    })
    .await
}

async fn logged_on(s: &Server, token: &str, name: &str) -> Value {
    eventually(|| async {
        let (_, b) = s.get(token, "/api/v1/brokers").await;
        let found = b["data"].as_array()?.iter().find(|x| x["name"] == name)?.clone();
        (found["session"]["status"] == "LOGGED_ON").then_some(found)
    })
    .await
}

fn account<'a>(positions: &'a Value, name: &str) -> Option<&'a Value> {
    positions["accounts"].as_array()?.iter().find(|a| a["account"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_route_by_account_to_paper_and_fix_with_positions_and_kill_switches_per_account() {
    if !quickfix_available() {
        return;
    }
    let (peer_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut peer = Peer::start(peer_dir.path(), 100_000);
    let config = format!(
        "[[brokers]]\nname = \"paper\"\nkind = \"paper\"\naccounts = [\"*\"]\n\n\
         [[brokers]]\nname = \"dma\"\nkind = \"fix\"\naccounts = [\"desk\"]\n[brokers.fix]\n{}",
        fix_settings(peer.port, "TS")
    );
    std::fs::write(dir.path().join("tradingsystem.toml"), config).unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let alice = s.user(&admin, "alice", "trader").await;
    let desk = s.user(&admin, "desk", "trader").await;
    let dma = logged_on(&s, &admin, "dma").await;
    assert_eq!((dma["kind"].as_str(), dma["accounts"][0].as_str()), (Some("fix"), Some("desk")));
    let (_, brokers) = s.get(&admin, "/api/v1/brokers").await;
    assert_eq!(brokers["total"], 2, "{brokers}");

    let last = last_price(&s, &admin).await;
    peer.price("PETR4", &format!("{last:.2}"));
    let market = |qty: i64| json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": qty});

    // desk's order goes over FIX to QuickFIX; alice's to the paper broker.
    let (st, d) = s.post(&desk, "/api/v1/orders", market(100)).await;
    assert_eq!(st, 201, "{d}");
    let (st, a) = s.post(&alice, "/api/v1/orders", market(200)).await;
    assert_eq!(st, 201, "{a}");
    for (token, o) in [(&desk, &d), (&alice, &a)] {
        let path = format!("/api/v1/orders/{}", o["id"]);
        eventually(|| async { (s.get(token, &path).await.1["status"] == "FILLED").then_some(()) }).await;
    }
    let (_, at_broker) = peer.order_of(d["id"].as_u64().unwrap());
    assert_eq!((at_broker["account"].as_str(), at_broker["cum"].as_i64()), (Some("desk"), Some(100)));
    let (_, df) = s.get(&desk, &format!("/api/v1/orders/{}", d["id"])).await;
    assert!(df["broker_order_id"].as_str().is_some_and(|b| b.starts_with('O')), "QuickFIX's OrderID: {df}");

    // Positions per account and in total.
    let positions = eventually(|| async {
        let (_, p) = s.get(&admin, "/api/v1/positions").await;
        (account(&p, "desk").is_some() && account(&p, "alice").is_some()).then_some(p)
    })
    .await;
    assert_eq!(account(&positions, "desk").unwrap()["positions"][0]["quantity"], 100);
    assert_eq!(account(&positions, "alice").unwrap()["positions"][0]["quantity"], 200);
    assert_eq!(positions["data"][0]["quantity"], 300, "the desk's total");

    // desk's own kill switch stops desk only; the global one stops everyone.
    let (st, k) = s.post(&desk, "/api/v1/risk/kill-switch", json!({"reason": "desk stop", "account": "desk"})).await;
    assert_eq!((st, k["active"].as_bool(), k["account"].as_str()), (200, Some(true), Some("desk")), "{k}");
    let (st, e) = s.post(&desk, "/api/v1/orders", market(100)).await;
    assert_eq!((st, e["error"]["code"].as_str()), (403, Some("KILL_SWITCH_ACTIVE")), "{e}");
    let (st, e) = s.post(&alice, "/api/v1/orders", market(100)).await;
    assert_eq!(st, 201, "alice trades on: {e}");
    let (_, risk) = s.get(&admin, "/api/v1/risk/status").await;
    assert_eq!(risk["account_kill_switches"][0]["account"], "desk");
    assert_eq!(risk["kill_switch"]["active"], false);
    let release =
        s.send(Method::DELETE, &admin, "/api/v1/risk/kill-switch", json!({"reason": "ok", "account": "desk"})).await;
    assert_eq!((release.0, release.1["active"].as_bool()), (200, Some(false)), "{}", release.1);
    let (st, e) = s.post(&desk, "/api/v1/orders", market(100)).await;
    assert_eq!(st, 201, "desk trades again: {e}");

    // A modify of desk's resting order is a cancel/replace at QuickFIX.
    let low = ((last * 0.97) * 100.0).round() / 100.0;
    let rest = json!({"symbol": "PETR4", "side": "BUY", "type": "LIMIT", "quantity": 100, "price": low});
    let (st, r) = s.post(&desk, "/api/v1/orders", rest).await;
    assert_eq!(st, 201, "{r}");
    let path = format!("/api/v1/orders/{}", r["id"]);
    eventually(|| async { (s.get(&desk, &path).await.1["status"] == "NEW").then_some(()) }).await;
    let (st, m) = s.send(Method::PATCH, &desk, &path, json!({"quantity": 300})).await;
    assert_eq!(st, 200, "{m}");
    eventually(|| async { (s.get(&desk, &path).await.1["quantity"] == 300).then_some(()) }).await;
    let (_, at_broker) = peer.order_of(r["id"].as_u64().unwrap());
    assert_eq!(at_broker["qty"], 300);

    // The broker goes away: desk's orders wait (503), alice's still route, /health says degraded.
    peer.cmd(json!({"cmd": "refuse_logons", "on": true}));
    peer.cmd(json!({"cmd": "disconnect"}));
    eventually(|| async {
        let (st, _) = s.post(&desk, "/api/v1/orders", market(100)).await;
        (st == 503).then_some(())
    })
    .await;
    let (st, _) = s.post(&alice, "/api/v1/orders", market(100)).await;
    assert_eq!(st, 201);
    let health: Value = s.client.get(s.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["checks"]["broker"]["status"], "degraded", "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_broker_fix_path_is_the_shortcut_for_one_fix_broker() {
    if !quickfix_available() {
        return;
    }
    let (peer_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut peer = Peer::start(peer_dir.path(), 100_000);
    let file = dir.path().join("fix.toml");
    std::fs::write(&file, fix_settings(peer.port, "TS")).unwrap();
    let s = Server::start_with(dir.path(), &[("TS_BROKER", &format!("fix:{}", file.display()))]);
    let admin = s.admin().await;
    let fix = logged_on(&s, &admin, "fix").await;
    assert_eq!(fix["accounts"][0], "*");
    let last = last_price(&s, &admin).await;
    peer.price("PETR4", &format!("{last:.2}"));
    let (st, o) = s
        .post(&admin, "/api/v1/orders", json!({"symbol": "PETR4", "side": "SELL", "type": "MARKET", "quantity": 100}))
        .await;
    assert_eq!(st, 201, "{o}");
    let path = format!("/api/v1/orders/{}", o["id"]);
    let filled = eventually(|| async {
        let o = s.get(&admin, &path).await.1;
        (o["status"] == "FILLED").then_some(o)
    })
    .await;
    assert_eq!(filled["fills"].as_array().map(Vec::len), Some(2), "QuickFIX fills in two parts: {filled}");
    // An operator resets the sequence numbers (admins only): both sides start again at 1, and orders flow.
    let (_, before) = s.get(&admin, "/api/v1/brokers").await;
    let before = before["data"][0]["session"]["next_sender_seq"].as_u64().unwrap();
    assert!(before >= 3, "the logon and the order used numbers: {before}");
    let trader = s.user(&admin, "trader1", "trader").await;
    let path = "/api/v1/brokers/fix/reset-sequence";
    assert_eq!(s.post(&trader, path, json!({})).await.0, 403);
    assert_eq!(s.post(&admin, "/api/v1/brokers/nope/reset-sequence", json!({})).await.0, 404);
    let (st, r) = s.post(&admin, path, json!({})).await;
    assert_eq!(st, 202, "{r}");
    eventually(|| async {
        let (_, b) = s.get(&admin, "/api/v1/brokers").await;
        let session = &b["data"][0]["session"];
        (session["status"] == "LOGGED_ON" && session["next_sender_seq"].as_u64() < Some(before)).then_some(())
    })
    .await;
    let (st, o) = s
        .post(&admin, "/api/v1/orders", json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100}))
        .await;
    assert_eq!(st, 201, "{o}");
    let path = format!("/api/v1/orders/{}", o["id"]);
    eventually(|| async { (s.get(&admin, &path).await.1["status"] == "FILLED").then_some(()) }).await;
    let log_dir = Path::new(dir.path()).join("fix/TS-BROKER/log");
    assert!(std::fs::read_dir(log_dir).unwrap().count() >= 1, "the FIX log is written under the data dir");
}

#[test]
fn bad_broker_configurations_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[[brokers]]\nname = \"a\"\nkind = \"fix\"\naccounts = [\"*\"]\n", "needs its session settings"),
        ("[[brokers]]\nname = \"a\"\nkind = \"carrier-pigeon\"\naccounts = [\"*\"]\n", "unknown kind"),
        (
            "[[brokers]]\nname = \"a\"\nkind = \"paper\"\naccounts = [\"x\"]\n[[brokers]]\nname = \"b\"\nkind = \"paper\"\naccounts = [\"x\"]\n",
            "account \"x\" is served by both",
        ),
        ("broker = \"paper\"\n[[brokers]]\nname = \"a\"\nkind = \"paper\"\naccounts = [\"*\"]\n", "not both"),
        ("broker = \"fix\"\n", "a [fix] table"),
        ("broker = \"fix\"\n[fix]\nhost = \"h\"\nport = 1\nsender_comp_id = \"A\"\ntarget_comp_id = \"B\"\nstart = \"09:00\"\n", "start and end"),
    ];
    for (config, want) in cases {
        std::fs::write(dir.path().join("tradingsystem.toml"), config).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradingsystem"))
            .arg("serve")
            .env("TS_DATA_DIR", dir.path())
            .env("TS_LISTEN", "127.0.0.1:0")
            .env("TS_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
            .env_remove("TS_BROKER")
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = common::one_line_error(&out);
        assert!(!out.status.success() && err.contains(want), "{config}: {err}");
    }
    std::fs::remove_file(dir.path().join("tradingsystem.toml")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradingsystem"))
        .arg("serve")
        .env("TS_DATA_DIR", dir.path())
        .env("TS_BROKER", "fix")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(common::one_line_error(&out).contains("fix:PATH"));
}
