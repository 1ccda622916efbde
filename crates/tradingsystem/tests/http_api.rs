//! The HTTP contract of the Order Manager, against the real server process.

mod common;

use common::{eventually, Server};
use reqwest::Method;
use serde_json::{json, Value};

fn order(symbol: &str, side: &str, ty: &str, qty: i64) -> Value {
    json!({"symbol": symbol, "side": side, "type": ty, "quantity": qty})
}

#[tokio::test]
async fn order_manager_http_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let trader = s.user(&admin, "trader1", "trader").await;
    let viewer = s.user(&admin, "viewer1", "viewer").await;

    // Public endpoints.
    for p in ["/health", "/ready", "/healthz"] {
        assert_eq!(s.client.get(s.url(p)).send().await.unwrap().status(), 200, "{p}");
    }
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ts_kill_switch_active"));

    // Authentication and roles.
    let r = s.client.get(s.url("/api/v1/orders")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    assert!(body["correlation_id"].is_string());
    assert_eq!(s.get("not-a-token", "/api/v1/orders").await.0, 401);
    let bad_login = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_login.status(), 401);
    let (st, body) = s.post(&viewer, "/api/v1/orders", order("PETR4", "BUY", "MARKET", 100)).await;
    assert_eq!((st, body["error"]["code"].as_str()), (403, Some("FORBIDDEN")));
    assert_eq!(
        s.post(&trader, "/api/v1/users", json!({"username": "x1x", "password": "password-1", "role": "admin"})).await.0,
        403
    );
    assert_eq!(
        s.post(&admin, "/api/v1/users", json!({"username": "trader1", "password": "password-1", "role": "trader"}))
            .await
            .0,
        409
    );
    assert_eq!(
        s.post(&admin, "/api/v1/users", json!({"username": "new1", "password": "short", "role": "trader"})).await.1
            ["error"]["details"]["field"],
        "password"
    );

    // Correlation ids are echoed.
    let r = s
        .client
        .get(s.url("/api/v1/orders"))
        .bearer_auth(&trader)
        .header("X-Correlation-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-correlation-id"], "abc-123");

    // Malformed JSON → 400; invalid fields → 422 naming the field; unknown symbol → 422.
    let r = s
        .client
        .post(s.url("/api/v1/orders"))
        .bearer_auth(&trader)
        .header("content-type", "application/json")
        .body("{\"symbol\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    for (body, field) in [
        (json!({"side": "BUY", "type": "MARKET", "quantity": 100}), "symbol"),
        (json!({"symbol": "PETR4", "side": "HOLD", "type": "MARKET", "quantity": 100}), "side"),
        (json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 1.5}), "quantity"),
        (json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 150}), "quantity"),
        (json!({"symbol": "PETR4", "side": "BUY", "type": "LIMIT", "quantity": 100}), "price"),
        (json!({"symbol": "PETR4", "side": "BUY", "type": "LIMIT", "quantity": 100, "price": 30.005}), "price"),
        (json!({"symbol": "PETR4", "side": "BUY", "type": "STOP", "quantity": 100}), "stop_price"),
        (json!({"symbol": "NOPE3", "side": "BUY", "type": "MARKET", "quantity": 100}), "symbol"),
        // Not a ticker at all: refused before the Order Manager, still naming the field.
        (json!({"symbol": "PETR-4", "side": "BUY", "type": "MARKET", "quantity": 100}), "symbol"),
        (json!({"symbol": "P".repeat(40), "side": "BUY", "type": "MARKET", "quantity": 100}), "symbol"),
        (json!({"symbol": "", "side": "BUY", "type": "MARKET", "quantity": 100}), "symbol"),
        (json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100, "qty": 1}), "qty"),
    ] {
        let (st, b) = s.post(&trader, "/api/v1/orders", body.clone()).await;
        assert_eq!(st, 422, "{body}: {b}");
        assert_eq!(b["error"]["details"]["field"], field, "{body}: {b}");
    }

    // A market order fills against the simulated book; /execute is the same endpoint.
    let (st, o) = s.post(&trader, "/api/v1/execute", order("PETR4", "BUY", "MARKET", 300)).await;
    assert_eq!(st, 201, "{o}");
    for key in [
        "id",
        "client_order_id",
        "symbol",
        "side",
        "type",
        "quantity",
        "price",
        "status",
        "filled_quantity",
        "avg_fill_price",
        "reject_reason",
        "fills",
    ] {
        assert!(o.get(key).is_some(), "order JSON has {key}");
    }
    let id = o["id"].as_u64().unwrap();
    let filled = eventually(|| async {
        let (_, o) = s.get(&viewer, &format!("/api/v1/orders/{id}")).await;
        (o["status"] == "FILLED").then_some(o)
    })
    .await;
    assert_eq!(filled["filled_quantity"], 300);
    assert!(!filled["fills"].as_array().unwrap().is_empty());
    assert!(filled["avg_fill_price"].as_f64().unwrap() > 0.0);
    let (_, pos) = s.get(&viewer, "/api/v1/positions").await;
    assert_eq!(pos["data"][0]["symbol"], "PETR4");
    assert_eq!(pos["data"][0]["quantity"], 300);

    // Idempotency: the same client_order_id returns the original order.
    let mut keyed = order("VALE3", "BUY", "MARKET", 100);
    keyed["client_order_id"] = json!("my-key-1");
    let (st1, o1) = s.post(&trader, "/api/v1/orders", keyed.clone()).await;
    let (st2, o2) = s.post(&trader, "/api/v1/orders", keyed).await;
    assert_eq!((st1, st2), (201, 200));
    assert_eq!(o1["id"], o2["id"]);

    // A resting limit order, then cancel.
    let (_, quote) = s.get(&viewer, "/api/v1/orders?symbol=PETR4&status=FILLED").await;
    let last = quote["data"][0]["fills"][0]["price"].as_f64().unwrap();
    let low = ((last * 0.95) * 100.0).round() / 100.0;
    let mut rest = order("PETR4", "BUY", "LIMIT", 100);
    rest["price"] = json!(low);
    rest["time_in_force"] = json!("GTC");
    let (st, r) = s.post(&trader, "/api/v1/orders", rest).await;
    assert_eq!(st, 201, "{r}");
    let rid = r["id"].as_u64().unwrap();
    eventually(|| async {
        (s.get(&viewer, &format!("/api/v1/orders/{rid}")).await.1["status"] == "NEW").then_some(())
    })
    .await;
    // Modify: twice the quantity one tick lower, confirmed by the broker; bad modifies are refused, naming why.
    let path = format!("/api/v1/orders/{rid}");
    let lower = ((low - 0.01) * 100.0).round() / 100.0;
    assert_eq!(s.send(Method::PATCH, &viewer, &path, json!({"quantity": 200})).await.0, 403);
    let (st, m) = s.send(Method::PATCH, &trader, &path, json!({"quantity": 200, "price": lower})).await;
    assert_eq!(st, 200, "{m}");
    let modified = eventually(|| async {
        let o = s.get(&viewer, &path).await.1;
        (o["quantity"] == 200 && o["price"].as_f64() == Some(lower) && o.get("pending_replace").is_none()).then_some(o)
    })
    .await;
    assert_eq!((modified["status"].as_str(), modified["leaves_quantity"].as_i64()), (Some("NEW"), Some(200)));
    for (body, status, field) in [
        (json!({}), 422, Some("quantity")),
        (json!({"price": lower + 0.001}), 422, Some("price")),
        (json!({"quantity": 150}), 422, Some("quantity")),
        (json!({"quantity": 200, "price": lower}), 422, Some("quantity")),
        (json!({"stop_price": 10.0}), 422, Some("stop_price")),
        (json!({"quantity": "many"}), 422, None),
        (json!({"colour": "red"}), 422, None),
        (json!({"price": ((last * 1.5) * 100.0).round() / 100.0}), 403, None),
    ] {
        let (st, e) = s.send(Method::PATCH, &trader, &path, body.clone()).await;
        assert_eq!(st, status, "{body}: {e}");
        if let Some(f) = field {
            assert_eq!(e["error"]["details"]["field"], f, "{body}: {e}");
        }
    }
    assert_eq!(s.send(Method::PATCH, &trader, "/api/v1/orders/999999", json!({"quantity": 100})).await.0, 404);
    let (_, audit) = s.get(&admin, &format!("/api/v1/audit?order_id={rid}")).await;
    let actions: Vec<&str> = audit["data"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"modify_order") && actions.contains(&"replaced"), "{actions:?}");
    assert_eq!(s.send(Method::DELETE, &viewer, &format!("/api/v1/orders/{rid}"), json!({})).await.0, 403);
    let (st, c) = s.send(Method::DELETE, &trader, &format!("/api/v1/orders/{rid}"), json!({})).await;
    assert_eq!(st, 200, "{c}");
    eventually(|| async {
        (s.get(&viewer, &format!("/api/v1/orders/{rid}")).await.1["status"] == "CANCELED").then_some(())
    })
    .await;
    assert_eq!(s.send(Method::DELETE, &trader, &format!("/api/v1/orders/{rid}"), json!({})).await.0, 409);
    assert_eq!(s.send(Method::PATCH, &trader, &path, json!({"quantity": 300})).await.0, 409, "a canceled order");
    assert_eq!(s.get(&viewer, "/api/v1/orders/999999").await.0, 404);
    assert_eq!(s.get(&viewer, "/api/v1/orders/abc").await.0, 422);

    // Risk: fat finger → 403 PRICE_BAND, recorded as REJECTED with its reason.
    let mut fat = order("PETR4", "BUY", "LIMIT", 100);
    fat["price"] = json!(((last * 1.5) * 100.0).round() / 100.0);
    let (st, e) = s.post(&trader, "/api/v1/orders", fat).await;
    assert_eq!((st, e["error"]["code"].as_str()), (403, Some("PRICE_BAND")), "{e}");
    let rejected_id = e["error"]["details"]["order"]["id"].as_u64().unwrap();
    let (_, rj) = s.get(&viewer, &format!("/api/v1/orders/{rejected_id}")).await;
    assert_eq!(rj["status"], "REJECTED");
    assert!(rj["reject_reason"].as_str().unwrap().contains("last trade"));
    let (st, e) = s.post(&trader, "/api/v1/orders", order("PETR4", "BUY", "MARKET", 20_000)).await;
    assert_eq!((st, e["error"]["code"].as_str()), (403, Some("MAX_ORDER_QTY")));

    // Filters and pagination.
    let (_, all) = s.get(&viewer, "/api/v1/orders?limit=2").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    let total = all["total"].as_u64().unwrap();
    assert!(total >= 5);
    let (_, page2) = s.get(&viewer, "/api/v1/orders?limit=2&offset=2").await;
    assert_ne!(all["data"][0]["id"], page2["data"][0]["id"]);
    let (_, rejected) = s.get(&viewer, "/api/v1/orders?status=REJECTED").await;
    assert!(rejected["data"].as_array().unwrap().iter().all(|o| o["status"] == "REJECTED"));
    let (_, sells) = s.get(&viewer, "/api/v1/orders?side=SELL").await;
    assert_eq!(sells["total"], 0);
    assert_eq!(s.get(&viewer, "/api/v1/orders?status=BOGUS").await.0, 422);
    assert_eq!(s.get(&viewer, "/api/v1/orders?limit=0").await.0, 422);
    assert_eq!(s.get(&viewer, "/api/v1/orders?from=yesterday").await.0, 422);
    let (_, none) = s.get(&viewer, "/api/v1/orders?from=2099-01-01T00:00:00Z").await;
    assert_eq!(none["total"], 0);

    // Limits: admins only, validated, audited.
    assert_eq!(
        s.send(Method::PUT, &trader, "/api/v1/risk/limits", json!({"reason": "x", "max_order_qty_stock": 500})).await.0,
        403
    );
    let (st, e) =
        s.send(Method::PUT, &admin, "/api/v1/risk/limits", json!({"reason": "x", "daily_loss_limit": 50})).await;
    assert_eq!((st, e["error"]["details"]["field"].as_str()), (422, Some("daily_loss_limit")));
    assert_eq!(s.send(Method::PUT, &admin, "/api/v1/risk/limits", json!({"max_order_qty_stock": 500})).await.0, 422);
    let (st, l) = s
        .send(Method::PUT, &admin, "/api/v1/risk/limits", json!({"reason": "tighten", "max_order_qty_stock": 500}))
        .await;
    assert_eq!(st, 200, "{l}");
    assert_eq!(l["max_order_qty_stock"], 500);
    assert_eq!(l["daily_loss_limit"], 5000.0);
    assert_eq!(s.get(&viewer, "/api/v1/risk/limits").await.1["max_order_qty_stock"], 500);
    // Per-symbol limits are keyed by ticker: a form's lower case is upper-cased, a key that is no ticker is refused.
    let per_symbol = json!({"reason": "per symbol", "symbols": {" vale3": {"max_order_qty": 300}}});
    let (st, l) = s.send(Method::PUT, &admin, "/api/v1/risk/limits", per_symbol).await;
    assert_eq!((st, &l["symbols"]["VALE3"]["max_order_qty"]), (200, &json!(300)), "{l}");
    let bad_key = json!({"reason": "x", "symbols": {"VALE 3": {"max_order_qty": 300}}});
    let (st, e) = s.send(Method::PUT, &admin, "/api/v1/risk/limits", bad_key).await;
    assert_eq!((st, e["error"]["details"]["field"].as_str()), (422, Some("symbols")), "{e}");

    // Kill switch: traders activate, only admins release.
    let (st, ks) = s.post(&trader, "/api/v1/risk/kill-switch", json!({"reason": "test"})).await;
    assert_eq!((st, ks["active"].as_bool()), (200, Some(true)));
    let (st, e) = s.post(&trader, "/api/v1/orders", order("PETR4", "SELL", "MARKET", 100)).await;
    assert_eq!((st, e["error"]["code"].as_str()), (403, Some("KILL_SWITCH_ACTIVE")));
    assert_eq!(s.send(Method::DELETE, &trader, "/api/v1/risk/kill-switch", json!({"reason": "go"})).await.0, 403);
    assert_eq!(s.send(Method::DELETE, &admin, "/api/v1/risk/kill-switch", json!({})).await.0, 422);
    let (_, status) = s.get(&viewer, "/api/v1/risk/status").await;
    assert_eq!(status["kill_switch"]["active"], true);
    let (st, ks) = s.send(Method::DELETE, &admin, "/api/v1/risk/kill-switch", json!({"reason": "resume"})).await;
    assert_eq!((st, ks["active"].as_bool()), (200, Some(false)));

    // The audit trail has who, what, when, why, result and correlation ids.
    let (_, audit) = s.get(&viewer, "/api/v1/audit?limit=1000").await;
    let rows = audit["data"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["result"] == "invalid"));
    assert!(rows.iter().any(|r| r["result"] == "rejected:PRICE_BAND" && r["actor"] == "trader1"));
    assert!(rows.iter().any(|r| r["action"] == "change_limits" && r["actor"] == "admin" && r["reason"] == "tighten"));
    assert!(rows.iter().any(|r| r["action"] == "kill_switch_release" && r["reason"] == "resume"));
    assert!(rows.iter().filter(|r| r["action"] == "submit_order").all(|r| r["correlation_id"].is_string()));
    let (_, one) = s.get(&viewer, &format!("/api/v1/audit?order_id={id}")).await;
    assert!(one["data"].as_array().unwrap().iter().all(|r| r["order_id"] == id));

    // API keys authenticate programs.
    let (st, k) = s.post(&admin, "/api/v1/api-keys", json!({"name": "bot", "role": "viewer"})).await;
    assert_eq!(st, 201);
    let key = k["key"].as_str().unwrap();
    let r = s.client.get(s.url("/api/v1/positions")).header("X-API-Key", key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .post(s.url("/api/v1/orders"))
        .header("X-API-Key", key)
        .json(&order("PETR4", "BUY", "MARKET", 100))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, keys) = s.get(&admin, "/api/v1/api-keys").await;
    assert!(keys["data"][0].get("key").is_none(), "keys are shown once");
    let kid = k["id"].as_str().unwrap();
    assert_eq!(s.send(Method::DELETE, &admin, &format!("/api/v1/api-keys/{kid}"), json!({})).await.0, 200);
    let r = s.client.get(s.url("/api/v1/positions")).header("X-API-Key", key).send().await.unwrap();
    assert_eq!(r.status(), 401);

    assert_eq!(s.get(&viewer, "/api/v1/nope").await.0, 404);

    // After all that activity, /metrics is valid Prometheus text (promtool's check, when installed).
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in [
        "ts_orders_total",
        "ts_risk_rejections_total",
        "ts_http_request_duration_seconds_bucket",
        "ts_journal_fsync_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "/metrics has {name}");
    }
    promtool_check(&metrics);
}

fn promtool_check(metrics: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        if std::env::var("TS_REQUIRE_PROMTOOL").is_ok_and(|v| v == "1") {
            panic!("promtool required (TS_REQUIRE_PROMTOOL=1) but it cannot be run");
        }
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
        return;
    };
    child.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let big = format!("{{\"symbol\":\"{}\"}}", "A".repeat(2 * 1024 * 1024));
    let r = s
        .client
        .post(s.url("/api/v1/orders"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["code"], "PAYLOAD_TOO_LARGE");
}

/// The same server on PostgreSQL (a fresh database per run) when `TS_TEST_DATABASE_URL` is set.
#[tokio::test]
async fn serves_on_postgres() {
    let Some(url) = storage::testing::fresh_postgres_url().await else {
        eprintln!("skipped: TS_TEST_DATABASE_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("TS_DATABASE_URL", url.as_str())]);
    let admin = s.admin().await;
    let trader = s.user(&admin, "pgtrader", "trader").await;
    let (st, o) = s.post(&trader, "/api/v1/orders", order("PETR4", "BUY", "MARKET", 100)).await;
    assert_eq!(st, 201, "{o}");
    let (_, health) = s.get(&trader, "/health").await;
    assert_eq!(health["checks"]["database"]["backend"], "postgres");
    assert_eq!(health["status"], "healthy");
    let (st, k) = s.post(&admin, "/api/v1/api-keys", json!({"name": "pgbot", "role": "viewer"})).await;
    assert_eq!(st, 201);
    let r = s.client.get(s.url("/api/v1/orders")).header("X-API-Key", k["key"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
