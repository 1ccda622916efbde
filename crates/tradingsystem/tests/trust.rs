//! Money, secrets and trust: exact prices, no secret in any answer or log, limits nobody dodges, access that ends
//! when it is taken away, a journal nobody floods, bad input answered 4xx on every backend.

mod common;

use common::Server;
use serde_json::{json, Value};

async fn symbol_starting(s: &Server, token: &str, root: &str) -> String {
    let (_, ins) = s.get(token, "/api/v1/market/instruments").await;
    ins["data"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i["symbol"].as_str().filter(|x| x.starts_with(root)))
        .unwrap()
        .to_string()
}

fn limit_order(symbol: &str, qty: i64, price: &str) -> String {
    format!(
        r#"{{"symbol":"{symbol}","side":"BUY","type":"LIMIT","quantity":{qty},"price":{price},"time_in_force":"DAY"}}"#
    )
}

#[tokio::test]
async fn prices_are_exact_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let win = symbol_starting(&s, &admin, "WIN").await;
    let wdo = symbol_starting(&s, &admin, "WDO").await;
    for (symbol, qty, price) in [
        ("PETR4", 100, "37.34001"),
        ("PETR4", 100, "37.3400001"),
        ("PETR4", 100, "37.3400000000000000001"),
        ("PETR4", 100, "2000.00001"),
        (win.as_str(), 1, "125435.00001"),
        (wdo.as_str(), 1, "5432.50001"),
    ] {
        let (st, body) = s.post_raw(&admin, "/api/v1/orders", &limit_order(symbol, qty, price)).await;
        assert_eq!(st, 422, "{symbol} @ {price}: {body}");
        assert_eq!(body["error"]["details"]["field"], "price", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("more than 4 decimal places"), "{body}");
    }
    // Off the tick grid (a valid decimal, but PETR4 trades in cents).
    let (st, body) = s.post_raw(&admin, "/api/v1/orders", &limit_order("PETR4", 100, "37.345")).await;
    assert_eq!((st, body["error"]["details"]["field"].as_str()), (422, Some("price")), "{body}");
    // Quantities: integers within the documented bound, refused before any arithmetic.
    for qty in ["1e3", "100.5", "9223372036854775807", "-100", "1000000000100"] {
        let body = format!(r#"{{"symbol":"PETR4","side":"BUY","type":"MARKET","quantity":{qty}}}"#);
        let (st, b) = s.post_raw(&admin, "/api/v1/orders", &body).await;
        assert_eq!((st, b["error"]["details"]["field"].as_str()), (422, Some("quantity")), "{qty}: {b}");
    }
    // A decimal string is read exactly too. R$ 1.01 is far outside PETR4's price band, so the risk engine refuses
    // it, and the REJECTED order carries exactly the price sent.
    let (st, o) = s.post_raw(&admin, "/api/v1/orders", &limit_order("PETR4", 100, "\"1.01\"")).await;
    assert_eq!(st, 403, "{o}");
    assert_eq!(o["error"]["details"]["order"]["price"], json!(1.01), "{o}");
    // The journal holds exact decimal strings, never a JSON float, for every price and amount.
    let journal = std::fs::read(dir.path().join("journal").join("oms.journal")).unwrap();
    let text = String::from_utf8_lossy(&journal);
    assert!(text.contains(r#""price":"1.01""#), "the journal writes the price as an exact string");
    assert!(!text.contains(r#""price":1.01"#));
}

#[tokio::test]
async fn limits_take_exact_money() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let r = s
        .client
        .put(s.url("/api/v1/risk/limits"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(r#"{"reason":"exactness","max_notional":1000000.00001}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["details"]["field"], "max_notional", "{b}");
}

const BOT_TOKEN: &str = "987654321:AAFsecretPartOfTheBotToken1234567890";

/// A Bot API that fails a different way on each call: 500 with an HTML page, 200 with broken JSON, then no answer
/// at all (the client times out); after that it answers normally. Returns its address and the call count.
async fn failing_bot_api(listener: tokio::net::TcpListener) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use axum::http::StatusCode;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/{bot}/getUpdates",
        axum::routing::get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => (StatusCode::INTERNAL_SERVER_ERROR, "<html>oops</html>".to_string()),
                    1 => (StatusCode::OK, "{not json".to_string()),
                    2 => {
                        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
                        (StatusCode::OK, String::new())
                    }
                    _ => {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        (StatusCode::OK, r#"{"ok":true,"result":[]}"#.to_string())
                    }
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    calls
}

/// Polling fails every way it can (refused, 500, bad JSON, timeout); neither stderr, nor the log files, nor any
/// API answer carries the bot token, the admin password or an API key afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_or_answer() {
    // A port nobody listens on yet: the first polls are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir.path(),
        &[
            ("TS_TELEGRAM_BOT_TOKEN", BOT_TOKEN),
            ("TS_TELEGRAM_API_URL", api.as_str()),
            ("TS_TELEGRAM_POLL_SECONDS", "1"),
            ("TS_LOG", "debug"),
        ],
    );
    let admin = s.admin().await;
    let (st, k) = s.post(&admin, "/api/v1/api-keys", json!({"name": "robot", "role": "viewer"})).await;
    assert_eq!(st, 201, "{k}");
    let api_key = k["key"].as_str().unwrap().to_string();
    let r = s.client.get(s.url("/api/v1/positions")).header("X-API-Key", &api_key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A registered bot: its token is not kept, so it cannot leak from the database either.
    let (st, bot) = s
        .post(
            &admin,
            "/api/v1/tp-capital/telegram/bots",
            json!({"username": "ingest_bot", "token": BOT_TOKEN, "bot_type": "ingestion"}),
        )
        .await;
    assert_eq!(st, 201, "{bot}");

    let poll_errors = |s: &Server, admin: String| {
        let s = s.handle();
        async move {
            let (_, logs) = s.get(&admin, "/api/v1/tp-capital/logs?limit=200").await;
            logs["data"].as_array().map_or(0, |a| a.iter().filter(|e| e["outcome"] == "poll_error").count())
        }
    };
    let limit = std::time::Duration::from_secs(60);
    common::eventually_within(limit, || async { (poll_errors(&s, admin.clone()).await >= 1).then_some(()) }).await;
    let calls = failing_bot_api(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap()).await;
    // 500, bad JSON and the timeout each logged, then a good poll.
    common::eventually_within(limit, || async {
        (calls.load(std::sync::atomic::Ordering::SeqCst) >= 4 && poll_errors(&s, admin.clone()).await >= 4)
            .then_some(())
    })
    .await;

    let secrets = [BOT_TOKEN, "AAFsecretPartOfTheBotToken1234567890", common::ADMIN_PASSWORD, api_key.as_str()];
    let mut seen: Vec<(String, String)> = Vec::new();
    // Every API answer a GET can give without a path parameter.
    let (_, openapi) = s.get(&admin, "/openapi.json").await;
    let mut paths: Vec<String> = openapi["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, item)| !p.contains('{') && item.get("get").is_some())
        .map(|(p, _)| p.clone())
        .collect();
    paths.extend(["/metrics".to_string(), "/health".to_string(), "/ready".to_string()]);
    assert!(paths.iter().any(|p| p == "/api/v1/tp-capital/logs"), "{paths:?}");
    for p in &paths {
        let r = s.client.get(s.url(p)).bearer_auth(&admin).send().await.unwrap();
        seen.push((format!("GET {p}"), r.text().await.unwrap()));
    }
    let (_, b) = s.get(&admin, &format!("/api/v1/tp-capital/telegram/bots/{}", bot["id"].as_str().unwrap())).await;
    seen.push(("GET bot".into(), b.to_string()));
    seen.push(("stderr".into(), s.stderr.lock().unwrap().join("\n")));
    let mut files = vec![dir.path().join("logs")];
    let mut log_files = 0;
    while let Some(d) = files.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                files.push(e.path());
            } else {
                log_files += 1;
                seen.push((e.path().display().to_string(), std::fs::read_to_string(e.path()).unwrap_or_default()));
            }
        }
    }
    assert!(log_files > 0, "the server writes log files");
    // The database file itself holds no secret either.
    for f in ["tradingsystem.db", "tradingsystem.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(f)) {
            seen.push((f.to_string(), String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    for (place, text) in &seen {
        for secret in secrets {
            assert!(!text.contains(secret), "{place} holds a secret ({}…)", &secret[..4]);
        }
    }
    let stderr = s.stderr.lock().unwrap().join("\n");
    assert!(stderr.contains("Telegram polling failed"), "the failures were logged");
}

fn random_key(i: usize) -> String {
    // The shape of a real key (`ts_` + 64 hex digits), a different one each time.
    let x = (i as u128 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    format!("ts_{x:032x}{:032x}", x.rotate_left(64))
}

/// A client that sends a new random API key with every request gets no fresh bucket: the keys are charged to its
/// IP, so at most the IP's allowance is answered (401) and the rest are 429 without a database lookup.
#[tokio::test]
async fn a_new_random_key_per_request_does_not_dodge_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("TS_RATE_LIMIT_PER_MINUTE", "20")]);
    let admin = s.admin().await;
    let (mut answered, mut limited) = (0, 0);
    for i in 0..60 {
        let key = if i % 2 == 0 { random_key(i) } else { format!("garbage-{i}") };
        let r = s.client.get(s.url("/api/v1/positions")).header("X-API-Key", key).send().await.unwrap();
        match r.status().as_u16() {
            401 => answered += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((answered, limited), (20, 40), "20 a minute per IP, whatever keys it invents");
    // The IP's budget is spent: an anonymous call from it is limited too.
    assert_eq!(s.client.get(s.url("/api/v1/orders")).send().await.unwrap().status(), 429);
    // A proven caller has its own bucket: the admin's token and a real key still work.
    assert_eq!(s.get(&admin, "/api/v1/orders").await.0, 200);
    let (st, k) = s.post(&admin, "/api/v1/api-keys", json!({"name": "robot", "role": "viewer"})).await;
    assert_eq!(st, 201, "{k}");
    let r = s.client.get(s.url("/api/v1/positions")).header("X-API-Key", k["key"].as_str().unwrap()).send().await;
    // The first use of a key not yet verified is charged to the IP, which is spent: 429 until it refills.
    assert_eq!(r.unwrap().status(), 429);
}

/// Disabling a user, changing a role or a password, revoking a key: each takes effect on the next request.
#[tokio::test]
async fn access_ends_when_it_is_taken_away() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let tom = s.user(&admin, "tom", "trader").await;
    let (_, users) = s.get(&admin, "/api/v1/users").await;
    let tom_id = users["data"].as_array().unwrap().iter().find(|u| u["username"] == "tom").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let order = json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100});
    assert_eq!(s.post(&tom, "/api/v1/orders", order.clone()).await.0, 201);

    let patch = |body: Value| {
        let (s, admin, id) = (s.handle(), admin.clone(), tom_id.clone());
        async move { s.send(reqwest::Method::PATCH, &admin, &format!("/api/v1/users/{id}"), body).await }
    };
    // Demoted: the same token now carries viewer rights.
    let (st, u) = patch(json!({"role": "viewer"})).await;
    assert_eq!((st, u["role"].as_str()), (200, Some("viewer")), "{u}");
    assert_eq!(s.post(&tom, "/api/v1/orders", order.clone()).await.0, 403);
    assert_eq!(s.get(&tom, "/api/v1/orders").await.0, 200);
    // Disabled: the token stops working and logins are refused.
    let (st, u) = patch(json!({"disabled": true})).await;
    assert_eq!((st, u["disabled"].as_bool()), (200, Some(true)), "{u}");
    assert_eq!(s.get(&tom, "/api/v1/orders").await.0, 401);
    let r = s.client.post(s.url("/api/v1/auth/login")).json(&json!({"username": "tom", "password": "password-123"}));
    assert_eq!(r.send().await.unwrap().status(), 401);
    // Enabled again: the old token stays ended, a new login works.
    assert_eq!(patch(json!({"disabled": false, "role": "trader"})).await.0, 200);
    assert_eq!(s.get(&tom, "/api/v1/orders").await.0, 401);
    let tom2 = s.login("tom", "password-123").await;
    assert_eq!(s.post(&tom2, "/api/v1/orders", order.clone()).await.0, 201);
    // Bad patches.
    assert_eq!(patch(json!({})).await.0, 422);
    assert_eq!(patch(json!({"role": "root"})).await.0, 422);
    assert_eq!(patch(json!({"disabled": "yes"})).await.0, 422);
    let (st, _) = s.send(reqwest::Method::PATCH, &admin, "/api/v1/users/nobody", json!({"disabled": true})).await;
    assert_eq!(st, 404);
    assert_eq!(s.send(reqwest::Method::PATCH, &tom2, "/api/v1/users/tom", json!({"role": "admin"})).await.0, 403);
    // The last admin cannot lock everyone out.
    let (st, e) = s.send(reqwest::Method::PATCH, &admin, "/api/v1/users/admin", json!({"disabled": true})).await;
    assert_eq!(st, 422, "{e}");

    // A password changed from the CLI (another process) ends the sessions within the cache's 2 s.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradingsystem"))
        .args(["user", "passwd", "tom", "--password", "another-password-9"])
        .env("TS_DATA_DIR", dir.path())
        .env_remove("TS_DATABASE_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    common::eventually(|| async { (s.get(&tom2, "/api/v1/orders").await.0 == 401).then_some(()) }).await;
    let tom3 = s.login("tom", "another-password-9").await;
    assert_eq!(s.get(&tom3, "/api/v1/orders").await.0, 200);

    // Revoking a key by id revokes that key only, even when another shares its name.
    let mut keys = Vec::new();
    for _ in 0..2 {
        let (st, k) = s.post(&admin, "/api/v1/api-keys", json!({"name": "same", "role": "viewer"})).await;
        assert_eq!(st, 201);
        keys.push((k["id"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string()));
    }
    let with_key = |key: String| {
        let s = s.handle();
        async move { s.client.get(s.url("/api/v1/orders")).header("X-API-Key", key).send().await.unwrap().status() }
    };
    assert_eq!(with_key(keys[0].1.clone()).await, 200);
    let (st, _) = s.send(reqwest::Method::DELETE, &admin, &format!("/api/v1/api-keys/{}", keys[0].0), json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(with_key(keys[0].1.clone()).await, 401, "revoked on the next request");
    assert_eq!(with_key(keys[1].1.clone()).await, 200, "the key that shares its name still works");
    assert_eq!(s.send(reqwest::Method::DELETE, &admin, "/api/v1/api-keys/same", json!({})).await.0, 404);
}

/// Refused requests are journaled as bounded summaries: 500 KB requests grow the journal by about 1 KiB each.
#[tokio::test]
async fn a_flood_of_huge_refused_requests_does_not_flood_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let journal = dir.path().join("journal").join("oms.journal");
    let size = || std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let big = "X".repeat(500_000);
    let bodies = [
        // Fails to parse (a string quantity): journaled by the gateway.
        format!(r#"{{"symbol":"PETR4","side":"BUY","type":"MARKET","quantity":"{big}"}}"#),
        // Parses, fails validation (an unknown symbol): journaled by the Order Manager.
        format!(r#"{{"symbol":"{big}","side":"BUY","type":"MARKET","quantity":100}}"#),
        // An unknown field carrying the bulk.
        format!(r#"{{"symbol":"PETR4","side":"BUY","type":"MARKET","quantity":100,"{big}":1}}"#),
        // A justification far beyond its limit.
        format!(r#"{{"symbol":"PETR4","side":"BUY","type":"MARKET","quantity":100,"justification":"{big}"}}"#),
    ];
    let n = 40;
    for i in 0..n {
        let (st, e) = s.post_raw(&admin, "/api/v1/orders", &bodies[i % bodies.len()]).await;
        assert_eq!(st, 422, "{e}");
        assert!(e.to_string().len() < 2_000, "the error does not echo the request: {} bytes", e.to_string().len());
    }
    let grown = size() - before;
    assert!(grown < n as u64 * 1_300, "{n} refused 500 KB requests grew the journal by {grown} bytes");
    // Each is in the audit trail, with its reason.
    let (_, audit) = s.get(&admin, "/api/v1/audit?limit=1000").await;
    let invalid = audit["data"].as_array().unwrap().iter().filter(|r| r["result"] == "invalid").count();
    assert_eq!(invalid, n);
}

/// Two partial limit updates at once both land: the merge happens under the Order Manager's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_limit_updates_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let put = |body: Value| {
        let (s, admin) = (s.handle(), admin.clone());
        async move {
            let r = s.client.put(s.url("/api/v1/risk/limits")).bearer_auth(&admin).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    for round in 0..20u32 {
        let qty = 10_000 + i64::from(round);
        let band = 500 + round;
        tokio::join!(
            put(json!({"reason": "qty", "max_order_qty_stock": qty})),
            put(json!({"reason": "band", "price_band_bps": band})),
        );
        let (_, l) = s.get(&admin, "/api/v1/risk/limits").await;
        assert_eq!(
            (l["max_order_qty_stock"].as_i64(), l["price_band_bps"].as_u64()),
            (Some(qty), Some(u64::from(band))),
            "round {round}"
        );
    }
}

/// Strangers messaging the bot share one `unregistered` metrics label; registered channels keep their own.
#[tokio::test]
async fn telegram_metrics_are_labelled_by_registered_channel_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("TS_TELEGRAM_WEBHOOK_SECRET", "webhook-secret-123")]);
    let admin = s.admin().await;
    let (st, _) = s
        .post(
            &admin,
            "/api/v1/tp-capital/telegram/channels",
            json!({"label": "TP", "channel_id": "-100777", "channel_type": "source"}),
        )
        .await;
    assert_eq!(st, 201);
    let push = |update_id: i64, chat: i64| {
        let s = s.handle();
        async move {
            let body = json!({"update_id": update_id, "channel_post": {"message_id": update_id, "date": 1759868759,
                "chat": {"id": chat, "type": "channel"}, "text": "bom dia"}});
            let r = s
                .client
                .post(s.url("/api/v1/tp-capital/telegram/webhook"))
                .header("X-Telegram-Bot-Api-Secret-Token", "webhook-secret-123")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    for i in 0..30 {
        push(i, -200_000 - i).await;
    }
    push(100, -100777).await;
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let lines: Vec<&str> = metrics.lines().filter(|l| l.starts_with("ts_tp_messages_total")).collect();
    assert!(lines.iter().any(|l| l.contains(r#"channel="unregistered""#) && l.ends_with(" 30")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(r#"channel="-100777""#)), "{lines:?}");
    assert!(!metrics.contains("-2000"), "a stranger's chat id became a label: {lines:?}");
}

/// NUL and other control characters, in bodies, paths and queries, are 422 on every backend; a body that is not
/// JSON is 415; the server stays ready throughout.
async fn bad_input_is_4xx(s: &Server) {
    let admin = s.admin().await;
    let nul = "a\u{0}b";
    let posts = [
        (
            "/api/v1/ideas",
            json!({"title": nul, "description": "d", "category": "dashboard", "priority": "low", "tags": []}),
            "title",
        ),
        (
            "/api/v1/ideas",
            json!({"title": "t", "description": "d", "category": "dashboard", "priority": "low", "tags": [nul]}),
            "tags[0]",
        ),
        ("/api/v1/categories", json!({"name": "x", "display_name": nul, "color": "#000000"}), "display_name"),
        (
            "/api/v1/tp-capital/telegram/channels",
            json!({"label": nul, "channel_id": "-100999", "channel_type": "source"}),
            "label",
        ),
        (
            "/api/v1/signals",
            json!({"symbol": nul, "action": "BUY", "confidence": 0.9, "model_version": "v1"}),
            "symbol",
        ),
        (
            "/api/v1/signals",
            json!({"symbol": "PETR4", "action": "BUY", "confidence": 0.1, "model_version": nul}),
            "model_version",
        ),
        ("/api/v1/api-keys", json!({"name": nul, "role": "viewer"}), "name"),
        ("/api/v1/users", json!({"username": "bob", "password": "pass\u{0}word-1", "role": "viewer"}), "password"),
        (
            "/api/v1/orders",
            json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100, "justification": nul}),
            "justification",
        ),
    ];
    for (path, body, field) in posts {
        let (st, e) = s.post(&admin, path, body).await;
        assert_eq!((st, e["error"]["details"]["field"].as_str()), (422, Some(field)), "{path}: {e}");
    }
    // No login needed to try it.
    let r = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": nul, "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    for path in [
        "/api/v1/ideas/a%00b",
        "/api/v1/ideas?search=a%00b",
        "/api/v1/tp-capital/signals?asset=%00",
        "/api/v1/docs/search?q=%01",
    ] {
        let (st, e) = s.get(&admin, path).await;
        assert_eq!(st, 422, "{path}: {e}");
    }
    // Not JSON: 415, whatever the body says.
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = s
            .client
            .post(s.url("/api/v1/ideas"))
            .bearer_auth(&admin)
            .header("content-type", ct)
            .body(r#"{"title":"t"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{ct}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    }
    let r = s.client.post(s.url("/api/v1/ideas")).bearer_auth(&admin).body(r#"{"title":"t"}"#).send().await.unwrap();
    assert_eq!(r.status(), 415, "no Content-Type");
    // Tab, CR and LF are text.
    let (st, e) = s
        .post(&admin, "/api/v1/ideas", json!({"title": "t", "description": "line 1\nline 2\tx", "category": "dashboard", "priority": "low", "tags": []}))
        .await;
    assert_eq!(st, 201, "{e}");
    assert_eq!(s.client.get(s.url("/ready")).send().await.unwrap().status(), 200, "still ready");
}

#[tokio::test]
async fn bad_input_is_4xx_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    bad_input_is_4xx(&Server::start(dir.path())).await;
}

#[tokio::test]
async fn bad_input_is_4xx_on_postgres() {
    let Some(url) = storage::testing::fresh_postgres_url().await else {
        eprintln!("skipped: TS_TEST_DATABASE_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    bad_input_is_4xx(&Server::start_with(dir.path(), &[("TS_DATABASE_URL", url.as_str())])).await;
}

/// A repeated `client_order_id` is the same order only when the request is the same.
#[tokio::test]
async fn idempotency_means_the_same_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let order = json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100, "client_order_id": "k-1"});
    let (st, first) = s.post(&admin, "/api/v1/orders", order.clone()).await;
    assert_eq!(st, 201, "{first}");
    let (st, again) = s.post(&admin, "/api/v1/orders", order.clone()).await;
    assert_eq!((st, &again["id"]), (200, &first["id"]));
    for (k, v) in
        [("quantity", json!(-100)), ("quantity", json!(200)), ("symbol", json!("VALE3")), ("side", json!("SELL"))]
    {
        let mut changed = order.clone();
        changed[k] = v;
        let (st, e) = s.post(&admin, "/api/v1/orders", changed).await;
        assert_eq!(st, 409, "{k}: {e}");
        assert_eq!(e["error"]["details"]["field"], "client_order_id");
        assert_eq!(e["error"]["details"]["differs"], k);
        assert_eq!(e["error"]["details"]["order"]["id"], first["id"]);
        assert!(e["error"]["message"].as_str().unwrap().contains("k-1"));
    }
    let (_, list) = s.get(&admin, "/api/v1/orders").await;
    assert_eq!(list["total"], 1, "nothing new was created");
}

/// A model signal whose stop or target could not protect its fill is refused whole, with the reason, before any
/// order is sent.
#[tokio::test]
async fn a_signal_that_cannot_be_protected_is_rejected_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let (st, m) = s
        .post(
            &admin,
            "/api/v1/signals",
            json!({"symbol": "PETR4", "action": "BUY", "confidence": 0.9, "model_version": "v1", "stop_loss": 999.0}),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let decision = m["decision"].as_str().unwrap();
    assert!(decision.starts_with("rejected: ") && decision.contains("stop must be below"), "{decision}");
    let (_, orders) = s.get(&admin, "/api/v1/orders").await;
    assert_eq!(orders["total"], 0, "nothing was sent");
}

/// The audit trail reads newest first, as a person looking at a trail expects; `order=asc` gives the written order.
#[tokio::test]
async fn the_audit_trail_is_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let (st, o) = s
        .post(&admin, "/api/v1/orders", json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100}))
        .await;
    assert_eq!(st, 201, "{o}");
    let id = o["id"].as_u64().unwrap();
    let (_, limits) = s.get(&admin, "/api/v1/risk/limits").await;
    let body = json!({"reason": "last", "max_orders_per_second": limits["max_orders_per_second"]});
    assert_eq!(s.send(reqwest::Method::PUT, &admin, "/api/v1/risk/limits", body).await.0, 200);
    let (_, desc) = s.get(&admin, "/api/v1/audit?limit=5").await;
    let seqs: Vec<u64> = desc["data"].as_array().unwrap().iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
    assert_eq!(desc["data"][0]["action"], "change_limits", "{desc}");
    let (_, asc) = s.get(&admin, "/api/v1/audit?limit=5&order=asc").await;
    let seqs: Vec<u64> = asc["data"].as_array().unwrap().iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] == 1, "oldest first: {seqs:?}");
    let (_, page2) = s.get(&admin, "/api/v1/audit?limit=1&offset=1").await;
    assert_eq!(page2["data"][0]["seq"].as_u64(), desc["data"][1]["seq"].as_u64(), "offsets count from the newest");
    let (_, one) = s.get(&admin, &format!("/api/v1/audit?order_id={id}")).await;
    let rows = one["data"].as_array().unwrap();
    assert!(rows.len() >= 2 && rows.iter().all(|r| r["order_id"] == id), "{one}");
    assert_eq!(rows.last().unwrap()["action"], "submit_order", "the order's first record comes last");
    assert_eq!(s.get(&admin, "/api/v1/audit?order=sideways").await.0, 422);
}
