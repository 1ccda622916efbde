//! WebSocket fan-out: 100 clients subscribed to every trade while the simulated market prints 10,000 trades/s
//! (1,250 per symbol on 8 symbols). Reports what each client received, drops, and the latency from a trade's
//! receive time to its arrival at a client. Server and clients share this machine.
//!
//! `cargo bench -p tradingsystem --bench ws_fanout` (add `-- --quick` for 3 s instead of 10 s).

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

// The allocator of the `tradingsystem` binary, so the numbers are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let secs = if quick { 3 } else { 10 };
    let clients = 100;
    let (_dir, mut cfg) = support::config(&[]);
    cfg.sim_trades_per_second = 1_250.0;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let server = support::start(cfg).await;
        let (addr, token) = (server.addr, server.token.clone());
        let http = reqwest::Client::new();
        let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("hist")));
        let mut tasks = Vec::new();
        let until = Instant::now() + Duration::from_secs(secs + 1);
        for _ in 0..clients {
            let (url, lat) = (format!("ws://{addr}/ws?token={token}"), latencies.clone());
            tasks.push(tokio::spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
                ws.send(Message::Text(json!({"action": "subscribe", "channels": ["trades"]}).to_string().into())).await.expect("send");
                let (mut trades, mut errors) = (0u64, 0u64);
                let warm = Instant::now() + Duration::from_secs(1);
                while Instant::now() < until {
                    let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await else { break };
                    let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    match v["type"].as_str() {
                        Some("trade") if Instant::now() > warm => {
                            trades += 1;
                            if let Some(rx) = v["data"]["receive_ts"].as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) {
                                let ns = (chrono::Utc::now() - rx.with_timezone(&chrono::Utc)).num_nanoseconds().unwrap_or(0).max(0) as u64;
                                if trades % 10 == 0 {
                                    let _ = lat.lock().unwrap_or_else(|e| e.into_inner()).record(ns);
                                }
                            }
                        }
                        Some("error") => errors += 1,
                        _ => {}
                    }
                }
                (trades, errors)
            }));
        }
        let mut per_client = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (n, e) = t.await.unwrap_or((0, 1));
            per_client.push(n);
            errors += e;
        }
        per_client.sort_unstable();
        let metrics = http.get(format!("http://{addr}/api/v1/market/status")).bearer_auth(&token).send().await.expect("status").json::<Value>().await.unwrap_or(Value::Null);
        let rate: f64 = metrics["symbols"].as_object().map(|m| m.values().filter_map(|s| s["trades_per_second"].as_f64()).sum()).unwrap_or(0.0);
        let h = latencies.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        println!(
            "websocket fan-out: {clients} clients over {secs} s at ~{rate:.0} trades/s (feed rate): trades per client min {} median {} max {}; SLOW_CONSUMER/errors {errors}; trade → client latency P50 {:.2} ms P99 {:.2} ms P99.9 {:.2} ms",
            per_client.first().copied().unwrap_or(0),
            per_client[per_client.len() / 2],
            per_client.last().copied().unwrap_or(0),
            ms(0.5),
            ms(0.99),
            ms(0.999)
        );
        server.stop().await;
    });
}
