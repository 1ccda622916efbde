//! The WebSocket protocol against the real server: subscriptions, market and order events, and a client that
//! never reads being dropped while another keeps receiving everything.

mod common;

use common::Server;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &Server, token: &str) -> Ws {
    let url = format!("{}/ws?token={token}", s.base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url).await.expect("websocket connects").0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message, within 5 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "no {kind} message");
        let m = next(ws).await;
        if m["type"] == kind {
            return m;
        }
    }
}

fn start_fast_market(dir: &std::path::Path) -> Server {
    std::fs::write(dir.join("tradingsystem.toml"), "[sim]\ntrades_per_second = 400\n").unwrap();
    Server::start(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_fast_market(dir.path());
    let admin = s.admin().await;

    // No credentials, no upgrade.
    let url = format!("{}/ws", s.base.replace("http://", "ws://"));
    assert!(tokio_tungstenite::connect_async(url).await.is_err());

    let mut ws = connect(&s, &admin).await;
    send(&mut ws, json!({"action": "subscribe", "channels": ["nope"]})).await;
    let e = next(&mut ws).await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("BAD_REQUEST")));
    send(&mut ws, json!({"action": "subscribe", "channels": ["trades"], "symbols": ["NOPE3"]})).await;
    assert_eq!(next(&mut ws).await["code"], "BAD_REQUEST");
    ws.send(Message::Text("not json".into())).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], "BAD_REQUEST");

    send(&mut ws, json!({"action": "subscribe", "channels": ["trades", "book", "quotes", "candles", "orders", "fills", "positions"], "symbols": ["PETR4"]})).await;
    let ack = next(&mut ws).await;
    assert_eq!(ack["type"], "subscribed");
    let t = next_of(&mut ws, "trade").await;
    assert_eq!(t["symbol"], "PETR4");
    assert!(t["data"]["price"].is_number() && t["seq"].is_u64());
    let b = next_of(&mut ws, "book").await;
    assert!(b["data"]["bids"].as_array().unwrap().len() >= 10);
    next_of(&mut ws, "quote").await;
    next_of(&mut ws, "candle").await;

    // An order placed over HTTP shows up as order, fill and position events.
    let (st, o) = s
        .post(&admin, "/api/v1/orders", json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100}))
        .await;
    assert_eq!(st, 201);
    let order = next_of(&mut ws, "order").await;
    assert_eq!(order["data"]["id"], o["id"]);
    let fill = next_of(&mut ws, "fill").await;
    assert_eq!(fill["data"]["order_id"], o["id"]);
    let pos = next_of(&mut ws, "position").await;
    assert_eq!(pos["data"]["symbol"], "PETR4");

    // A resting order modified over HTTP: the stream shows the pending modify, then the new terms.
    let last = fill["data"]["fill"]["price"].as_f64().unwrap();
    let low = ((last * 0.95) * 100.0).round() / 100.0;
    let rest = json!({"symbol": "PETR4", "side": "BUY", "type": "LIMIT", "quantity": 100, "price": low});
    let (st, r) = s.post(&admin, "/api/v1/orders", rest).await;
    assert_eq!(st, 201, "{r}");
    let path = format!("/api/v1/orders/{}", r["id"]);
    let (st, m) = s.send(reqwest::Method::PATCH, &admin, &path, json!({"quantity": 300})).await;
    assert_eq!(st, 200, "{m}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut saw_pending, mut saw_replaced) = (false, false);
    while !saw_replaced {
        assert!(Instant::now() < deadline, "no replaced order on the stream");
        let o = next_of(&mut ws, "order").await;
        if o["data"]["id"] == r["id"] {
            saw_pending |= o["data"]["pending_replace"]["quantity"] == 300;
            saw_replaced = o["data"]["quantity"] == 300 && o["data"].get("pending_replace").is_none();
        }
    }
    assert!(saw_pending, "the pending modify was streamed first");

    // Sequence numbers are per connection and strictly increasing.
    let (a, b) = (next(&mut ws).await["seq"].as_u64().unwrap(), next(&mut ws).await["seq"].as_u64().unwrap());
    assert_eq!(b, a + 1);

    send(&mut ws, json!({"action": "unsubscribe", "channels": ["trades", "book", "quotes", "candles", "orders", "fills", "positions"]})).await;
    let ack = next_of(&mut ws, "subscribed").await;
    assert!(ack["channels"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_dropped_and_others_get_everything() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_fast_market(dir.path());
    let admin = s.admin().await;

    // The stalled client subscribes to everything and then never reads.
    let mut stalled = connect(&s, &admin).await;
    send(&mut stalled, json!({"action": "subscribe", "channels": ["trades", "book", "quotes", "candles"]})).await;

    let mut reader = connect(&s, &admin).await;
    send(&mut reader, json!({"action": "subscribe", "channels": ["trades"], "symbols": ["PETR4"]})).await;
    assert_eq!(next(&mut reader).await["type"], "subscribed");

    // Keep reading for a while; every PETR4 trade id must arrive, in order, without a hole.
    let mut last_id: Option<u64> = None;
    let mut received = 0;
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let m = next(&mut reader).await;
        assert_ne!(m["type"], "error", "{m}");
        let id = m["data"]["trade_id"].as_u64().unwrap();
        if let Some(prev) = last_id {
            assert_eq!(id, prev + 1, "the reading client missed a trade");
        }
        last_id = Some(id);
        received += 1;
    }
    assert!(received > 100, "{received} trades received");

    // The stalled client was cut off: draining its buffers ends in SLOW_CONSUMER or a closed connection.
    let mut saw_end = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                if t.contains("SLOW_CONSUMER") {
                    saw_end = true;
                    break;
                }
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                saw_end = true;
                break;
            }
            Ok(Some(Ok(_))) => {}
            Err(_) => break,
        }
    }
    assert!(saw_end, "the stalled client must be disconnected");
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("ts_ws_slow_consumers_total") && !l.ends_with(" 0")),
        "slow consumer counted"
    );
}

/// With `TS_BUS_URL=nats://...` the server's market data is on NATS: another process (this test) receives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_data_on_nats_reaches_other_processes() {
    let Some(url) = std::env::var("TS_TEST_NATS_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: TS_TEST_NATS_URL is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let outside = bus::Bus::connect_nats(&url).await.unwrap();
    let mut sub = outside.subscribe("md.trades.PETR4", 10_000).unwrap();
    let s = Server::start_with(dir.path(), &[("TS_BUS_URL", url.as_str())]);
    let d = tokio::time::timeout(Duration::from_secs(10), sub.recv()).await.expect("a trade over NATS").unwrap();
    assert!(matches!(&*d.event, bus::Event::Trade(t) if t.symbol == "PETR4"));
    let admin = s.admin().await;
    let (_, health) = s.get(&admin, "/health").await;
    assert_eq!(health["checks"]["bus"]["status"], "up");
    assert!(health["checks"]["bus"]["kind"].as_str().unwrap().starts_with("nats://"));
    // The server's own consumers go through NATS too: WebSocket clients still get trades.
    let mut ws = connect(&s, &admin).await;
    send(&mut ws, json!({"action": "subscribe", "channels": ["trades"], "symbols": ["VALE3"]})).await;
    assert_eq!(next_of(&mut ws, "trade").await["symbol"], "VALE3");
}
