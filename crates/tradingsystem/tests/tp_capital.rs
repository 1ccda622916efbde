//! TP-Capital over HTTP against the real server.

mod common;

use common::{eventually, Server};
use serde_json::json;

#[tokio::test]
async fn the_parser_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let viewer = s.user(&admin, "reader", "viewer").await;

    let text = "🔴 Day Trade\nAtivo: VALE3\nVenda: 61,80 a 61,50\nAlvo 1: 60,90\nStop: 62,40";
    let (status, v) = s.post(&viewer, "/api/v1/tp-capital/parse", json!({ "text": text })).await;
    assert_eq!(status, 200);
    assert_eq!(v["asset"], "VALE3");
    assert_eq!(v["side"], "SELL");
    assert_eq!(v["signal_type"], "Day Trade");
    assert_eq!((v["buy_min"].as_f64(), v["buy_max"].as_f64()), (Some(61.5), Some(61.8)));
    assert_eq!(v["targets"], json!([60.9]));
    assert_eq!(v["raw_message"], text);

    let (status, v) =
        s.post(&viewer, "/api/v1/tp-capital/parse", json!({ "text": "BOVAW22 ALVO 1 ATINGIDO ✅" })).await;
    assert_eq!((status, v), (200, serde_json::Value::Null));

    let (status, v) = s.post(&viewer, "/api/v1/tp-capital/parse", json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(v["error"]["details"]["field"], "text");
    let (status, _) = s.post(&viewer, "/api/v1/tp-capital/parse", json!({ "text": "x".repeat(20_000) })).await;
    assert_eq!(status, 422);
}

/// A local server that answers like the Telegram Bot API: `getUpdates` with offset semantics (updates below the
/// offset are confirmed and dropped), real-shaped `{"ok":true,"result":[...]}` JSON, and one failure at the start
/// (`{"ok":false,...}` with 502) to exercise the backoff.
struct FakeBotApi {
    base: String,
    updates: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    offsets: std::sync::Arc<std::sync::Mutex<Vec<i64>>>,
}

const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const SECRET: &str = "s3cret-webhook-token";
const CHANNEL: i64 = -1001649127710;

fn post(update_id: i64, kind: &str, chat: i64, message_id: i64, body: serde_json::Value) -> serde_json::Value {
    let mut msg = json!({"message_id": message_id, "chat": {"id": chat, "type": "channel", "title": "TP Capital"}, "date": 1759868759});
    for (k, v) in body.as_object().unwrap() {
        msg[k] = v.clone();
    }
    json!({ "update_id": update_id, kind: msg })
}

async fn fake_bot_api() -> FakeBotApi {
    use axum::extract::{Path, Query, State};
    type Shared = (
        std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
        std::sync::Arc<std::sync::Mutex<Vec<i64>>>,
        std::sync::Arc<std::sync::atomic::AtomicBool>,
    );
    async fn get_updates(
        State((updates, offsets, failed)): State<Shared>,
        Path(bot): Path<String>,
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
        if bot != format!("bot{TOKEN}") {
            return (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
            );
        }
        if !failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return (
                axum::http::StatusCode::BAD_GATEWAY,
                axum::Json(json!({"ok": false, "error_code": 502, "description": "Bad Gateway"})),
            );
        }
        let offset: i64 = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        assert!(q.get("allowed_updates").is_some_and(|a| a.contains("channel_post")));
        offsets.lock().unwrap().push(offset);
        let pending: Vec<serde_json::Value> = {
            let mut u = updates.lock().unwrap();
            u.retain(|x| x["update_id"].as_i64().unwrap() >= offset);
            u.clone()
        };
        if pending.is_empty() {
            // A short hold stands for the long poll.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        (axum::http::StatusCode::OK, axum::Json(json!({"ok": true, "result": pending})))
    }
    let updates = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let offsets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let state: Shared = (updates.clone(), offsets.clone(), Default::default());
    let app = axum::Router::new().route("/{bot}/getUpdates", axum::routing::get(get_updates)).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    FakeBotApi { base, updates, offsets }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_ingestion_storage_and_api() {
    let fake = fake_bot_api().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("TS_TELEGRAM_BOT_TOKEN", TOKEN),
        ("TS_TELEGRAM_API_URL", fake.base.as_str()),
        ("TS_TELEGRAM_WEBHOOK_SECRET", SECRET),
    ];
    let mut s = Server::start_with(dir.path(), &env);
    let admin = s.admin().await;
    let trader = s.user(&admin, "desk", "trader").await;

    // Registries: a source channel, an inactive one, a bot whose token never comes back whole.
    let (status, ch) = s.post(&admin, "/api/v1/tp-capital/telegram/channels", json!({"label": "TP Capital", "channel_id": CHANNEL.to_string(), "channel_type": "source", "description": "sinais"})).await;
    assert_eq!(status, 201, "{ch}");
    let (status, _) = s
        .post(
            &admin,
            "/api/v1/tp-capital/telegram/channels",
            json!({"label": "Old", "channel_id": "-100222", "channel_type": "source", "status": "inactive"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, e) = s
        .post(
            &admin,
            "/api/v1/tp-capital/telegram/channels",
            json!({"label": "Dup", "channel_id": CHANNEL.to_string(), "channel_type": "source"}),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    let (status, e) = s
        .post(
            &admin,
            "/api/v1/tp-capital/telegram/channels",
            json!({"label": "x", "channel_id": "abc", "channel_type": "source"}),
        )
        .await;
    assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some("channel_id")));
    let (status, bot) = s
        .post(
            &admin,
            "/api/v1/tp-capital/telegram/bots",
            json!({"username": "tp_ingest_bot", "token": TOKEN, "bot_type": "ingestion"}),
        )
        .await;
    assert_eq!(status, 201, "{bot}");
    assert_eq!(bot["token_hint"], "123456789:…Dsaw");
    let (_, bots) = s.get(&admin, "/api/v1/tp-capital/telegram/bots").await;
    assert!(!bots.to_string().contains("AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"), "the token is never returned");
    assert_eq!(s.get(&trader, "/api/v1/tp-capital/telegram/bots").await.0, 403);

    // Telegram delivers: a signal, the same message again, commentary, an edit, strangers, a captioned photo.
    let signal = "🟢Swing Trade\n\nAtivo: BOVAW32\nCompra: 1,04 a 1,06\nAlvo 1: 1,15\nAlvo 2: 2,15\nAlvo final: 3,50\n\nStop: 0,70";
    let edited = signal.replace("Stop: 0,70", "Stop: 0,80");
    *fake.updates.lock().unwrap() = vec![
        post(100, "channel_post", CHANNEL, 1, json!({"text": signal})),
        post(101, "channel_post", CHANNEL, 1, json!({"text": signal})),
        post(102, "channel_post", CHANNEL, 2, json!({"text": "Bom dia! Mercado abrindo em alta."})),
        post(103, "edited_channel_post", CHANNEL, 1, json!({"text": edited, "edit_date": 1759868800})),
        post(104, "channel_post", -100999, 3, json!({"text": signal})),
        post(105, "channel_post", -100222, 4, json!({"text": signal})),
        post(
            106,
            "channel_post",
            CHANNEL,
            5,
            json!({"photo": [{"file_id": "x"}], "caption": "Day Trade\nAtivo: PETR4\nCompra: 38,50\nStop: 37,90"}),
        ),
        json!({"update_id": 107, "channel_post": {"message_id": "not a number"}}),
    ];
    let list = eventually(|| async {
        let (_, v) = s.get(&trader, "/api/v1/tp-capital/signals").await;
        let acknowledged = fake.offsets.lock().unwrap().last().copied() == Some(108);
        (acknowledged && v["total"] == 2).then_some(v)
    })
    .await;
    let first = list["data"].as_array().unwrap().iter().find(|x| x["asset"] == "BOVAW32").unwrap().clone();
    assert_eq!(first["stop"], 0.8, "the edit updated the signal");
    assert_eq!((first["buy_min"].as_f64(), first["target_final"].as_f64()), (Some(1.04), Some(3.5)));
    assert_eq!(first["source"], "telegram-polling");
    assert_eq!(first["channel_id"], CHANNEL.to_string());
    assert_eq!(first["telegram_message_id"], 1);

    // The webhook: its own secret, the same idempotency whichever way a message arrives.
    let hook = |secret: Option<&str>, body: serde_json::Value| {
        let mut rb = s.client.post(s.url("/api/v1/tp-capital/telegram/webhook")).json(&body);
        if let Some(sec) = secret {
            rb = rb.header("X-Telegram-Bot-Api-Secret-Token", sec);
        }
        rb.send()
    };
    // Live on the WebSocket's `signals` channel.
    let ws_url = format!("{}/ws?token={trader}", s.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    {
        use futures_util::{SinkExt, StreamExt};
        let sub = json!({"action": "subscribe", "channels": ["signals"]}).to_string();
        ws.send(tokio_tungstenite::tungstenite::Message::Text(sub.into())).await.unwrap();
        let ack = ws.next().await.unwrap().unwrap();
        assert!(ack.to_text().unwrap().contains("subscribed"));
    }
    let live = post(199, "channel_post", CHANNEL, 8, json!({"text": "Ativo: ITUB4\nCompra: 32,10\nStop: 31,20"}));
    let r = s
        .client
        .post(s.url("/api/v1/tp-capital/telegram/webhook"))
        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .json(&live)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    {
        use futures_util::StreamExt;
        let m = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["symbol"].as_str(), v["data"]["buy_min"].as_f64()),
            (Some("signal"), Some("ITUB4"), Some(32.1))
        );
    }
    let fresh = post(
        200,
        "channel_post",
        CHANNEL,
        9,
        json!({"text": "Ativo: VALE3\nCompra: 61,00\nAlvo 1: 63,00\nStop: 59,90"}),
    );
    assert_eq!(hook(None, fresh.clone()).await.unwrap().status(), 401);
    assert_eq!(hook(Some("wrong"), fresh.clone()).await.unwrap().status(), 401);
    let r: serde_json::Value = hook(Some(SECRET), fresh.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(r["outcome"], "parsed");
    let r: serde_json::Value = hook(Some(SECRET), fresh.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(r["outcome"], "duplicate");
    assert_eq!(hook(Some(SECRET), json!({"nope": true})).await.unwrap().status(), 400);
    fake.updates.lock().unwrap().push(post(
        108,
        "channel_post",
        CHANNEL,
        9,
        json!({"text": "Ativo: VALE3\nCompra: 61,00\nAlvo 1: 63,00\nStop: 59,90"}),
    ));
    eventually(|| async { (fake.offsets.lock().unwrap().last().copied() == Some(109)).then_some(()) }).await;
    let (_, v) = s.get(&trader, "/api/v1/tp-capital/signals").await;
    assert_eq!(v["total"], 4, "a message seen by webhook and by polling is stored once");

    // Filters and real pagination.
    let (_, v) = s.get(&trader, "/api/v1/tp-capital/signals?asset=petr4").await;
    assert_eq!((v["total"].as_i64(), v["data"][0]["signal_type"].as_str()), (Some(1), Some("Day Trade")));
    let (_, v) = s.get(&trader, "/api/v1/tp-capital/signals?limit=1&offset=1").await;
    assert_eq!((v["total"].as_i64(), v["data"].as_array().unwrap().len()), (Some(4), 1));
    let (_, v) = s.get(&trader, "/api/v1/tp-capital/signals?search=vale3&type=swing%20trade").await;
    assert_eq!(v["total"], 1);
    let (status, e) = s.get(&trader, "/api/v1/tp-capital/signals?type=swing").await;
    assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some("type")), "a type that is none: {e}");
    assert_eq!(s.get(&trader, "/api/v1/tp-capital/signals?limit=0").await.0, 422);
    assert_eq!(s.get(&trader, "/api/v1/tp-capital/signals?from=yesterday").await.0, 422);

    // CSV in the original layout.
    let csv = s
        .client
        .get(s.url("/api/v1/tp-capital/signals/export.csv?asset=BOVAW32"))
        .bearer_auth(&trader)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("DATA;ATIVO;COMPRA_MIN;COMPRA_MAX;ALVO_1;ALVO_2;ALVO_FINAL;STOP"));
    assert_eq!(lines.next(), Some("07/10/2025 17:25:59;BOVAW32;1,04;1,06;1,15;2,15;3,50;0,80"));

    // The log says what happened to every message; channels count their signals.
    let (_, logs) = s.get(&trader, "/api/v1/tp-capital/logs?limit=50").await;
    let outcomes: Vec<&str> = logs["data"].as_array().unwrap().iter().filter_map(|l| l["outcome"].as_str()).collect();
    for o in ["parsed", "duplicate", "ignored", "updated", "unregistered", "poll_error", "failed"] {
        assert!(outcomes.contains(&o), "log has {o}: {outcomes:?}");
    }
    let (_, chans) = s.get(&trader, "/api/v1/tp-capital/telegram/channels").await;
    let tp = chans["data"].as_array().unwrap().iter().find(|c| c["label"] == "TP Capital").unwrap();
    assert_eq!(tp["signal_count"], 4);

    // Delete moves to the archive.
    let id = first["id"].as_i64().unwrap();
    assert_eq!(
        s.send(reqwest::Method::DELETE, &trader, &format!("/api/v1/tp-capital/signals/{id}"), json!(null)).await.0,
        200
    );
    assert_eq!(s.get(&trader, &format!("/api/v1/tp-capital/signals/{id}")).await.0, 404);
    assert_eq!(s.get(&trader, "/api/v1/tp-capital/signals/abc").await.0, 422);

    // The offset survives a restart: polling resumes after the last handled update.
    s.stop();
    let before = fake.offsets.lock().unwrap().len();
    let s2 = Server::start_with(dir.path(), &env);
    eventually(|| async { (fake.offsets.lock().unwrap().len() > before).then_some(()) }).await;
    assert_eq!(fake.offsets.lock().unwrap()[before], 109, "resumed from the persisted offset");
    drop(s2);
}

/// Cents to a JSON price.
fn brl(cents: i64) -> serde_json::Value {
    json!(cents as f64 / 100.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_into_orders() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("TS_TELEGRAM_WEBHOOK_SECRET", SECRET), ("TS_SIGNAL_SIZING", "lots:2")]);
    let admin = s.admin().await;
    let trader = s.user(&admin, "quant", "trader").await;
    let viewer = s.user(&admin, "watcher", "viewer").await;
    let (_, q) = s.get(&trader, "/api/v1/market/quote?symbol=PETR4").await;
    let ask = (q["ask"]["price"].as_f64().unwrap() * 100.0).round() as i64;

    // Strategy/ML signals: HOLD and low confidence are recorded, nothing traded.
    let signal = |action: &str, confidence: f64| json!({"symbol": "PETR4", "action": action, "confidence": confidence, "model_version": "lstm-v3", "price_target": brl(ask + 150), "stop_loss": brl(ask - 150)});
    let (status, v) = s.post(&trader, "/api/v1/signals", signal("HOLD", 0.9)).await;
    assert_eq!((status, v["decision"].as_str(), v["bracket"].is_null()), (201, Some("hold"), true));
    let (_, v) = s.post(&trader, "/api/v1/signals", signal(" buy ", 0.59)).await;
    assert_eq!((v["decision"].as_str(), v["action"].as_str()), (Some("below_threshold"), Some("BUY")));
    for (body, field) in [
        (json!({"symbol": "PETR4", "action": "BUY", "confidence": 1.5, "model_version": "x"}), "confidence"),
        (json!({"symbol": "NOPE3", "action": "BUY", "confidence": 0.9, "model_version": "x"}), "symbol"),
        (json!({"symbol": "PETR4", "action": "SHORT", "confidence": 0.9, "model_version": "x"}), "action"),
        (json!({"symbol": "PETR4", "action": "BUY", "confidence": 0.9}), "model_version"),
    ] {
        let (status, e) = s.post(&trader, "/api/v1/signals", body).await;
        assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some(field)));
    }
    assert_eq!(s.post(&viewer, "/api/v1/signals", signal("BUY", 0.9)).await.0, 403);

    // A confident BUY opens a bracket: market entry (2 lots), then a protective stop and a take-profit.
    let (status, v) = s.post(&trader, "/api/v1/signals", signal("BUY", 0.81)).await;
    assert_eq!((status, v["decision"].as_str()), (201, Some("ordered")), "{v}");
    let id = v["id"].as_i64().unwrap();
    let b = eventually(|| async {
        let (_, list) = s.get(&viewer, "/api/v1/signals").await;
        let b = list["data"].as_array()?.iter().find(|x| x["id"] == id)?["bracket"].clone();
        (b["phase"] == "exits" && b["stop_orders"].as_array()?.len() == 1).then_some(b)
    })
    .await;
    assert_eq!(b["filled"], 200);
    let (_, entry) = s.get(&viewer, &format!("/api/v1/orders/{}", b["entry_order"])).await;
    assert_eq!(
        (entry["source"].as_str(), entry["client_order_id"].as_str()),
        (Some(format!("ml:lstm-v3:{id}").as_str()), Some(format!("ml-{id}-entry").as_str()))
    );
    assert_eq!(entry["status"], "FILLED");
    let (_, stop) = s.get(&viewer, &format!("/api/v1/orders/{}", b["stop_orders"][0])).await;
    assert_eq!(
        (stop["type"].as_str(), stop["side"].as_str(), stop["quantity"].as_i64()),
        (Some("STOP"), Some("SELL"), Some(200))
    );
    let (_, tp) = s.get(&viewer, &format!("/api/v1/orders/{}", b["take_profits"][0])).await;
    assert_eq!((tp["type"].as_str(), tp["price"].as_f64()), (Some("LIMIT"), brl(ask + 150).as_f64()));
    // The audit trail links the signal's orders to their fills.
    let (_, audit) = s.get(&viewer, &format!("/api/v1/audit?order_id={}", b["entry_order"])).await;
    assert!(audit.to_string().contains(&format!("ml-{id}-entry")) && audit.to_string().contains("fill"), "{audit}");

    // TP-Capital: a channel that auto-trades turns its new signals into brackets; one that does not, never.
    for (label, chat, auto) in [("auto", "-100111", true), ("manual", "-100222", false)] {
        let (status, _) = s
            .post(
                &admin,
                "/api/v1/tp-capital/telegram/channels",
                json!({"label": label, "channel_id": chat, "channel_type": "source", "auto_trade": auto}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let text = format!(
        "Ativo: PETR4\nCompra: {}\nAlvo 1: {}\nStop: {}",
        (ask + 10) as f64 / 100.0,
        (ask + 200) as f64 / 100.0,
        (ask - 200) as f64 / 100.0
    )
    .replace('.', ",");
    let mut ids = Vec::new();
    for (update_id, chat) in [(1, -100111_i64), (2, -100222)] {
        let r: serde_json::Value = s
            .client
            .post(s.url("/api/v1/tp-capital/telegram/webhook"))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .json(&post(update_id, "channel_post", chat, 77, json!({"text": text})))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["outcome"], "parsed", "{r}");
        ids.push(r["signal_id"].as_i64().unwrap());
    }
    let traded = eventually(|| async {
        let (_, v) = s.get(&viewer, &format!("/api/v1/tp-capital/signals/{}", ids[0])).await;
        (v["bracket"]["phase"] == "exits").then_some(v)
    })
    .await;
    let (_, entry) = s.get(&viewer, &format!("/api/v1/orders/{}", traded["bracket"]["entry_order"])).await;
    assert_eq!(
        (entry["type"].as_str(), entry["source"].as_str()),
        (Some("LIMIT"), Some(format!("tp-capital:{}", ids[0]).as_str()))
    );
    assert_eq!(entry["price"].as_f64(), Some((ask + 10) as f64 / 100.0), "the top of the buy range");
    let (_, manual) = s.get(&viewer, &format!("/api/v1/tp-capital/signals/{}", ids[1])).await;
    assert!(manual["bracket"].is_null(), "auto-trading is off unless the channel asks for it");
}
