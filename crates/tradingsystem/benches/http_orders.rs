//! `POST /api/v1/orders` over loopback HTTP against the full server (auth, validation, risk, journal with fsync,
//! paper broker), started in-process on a temporary data dir.
//!
//! `cargo bench -p tradingsystem --bench http_orders` prints the latency of one request at a time (keep-alive
//! connection, P50/P99/P99.9) and the throughput of 64 concurrent clients. Client and server share this machine's
//! cores, so the numbers include the client's cost too.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

// The allocator of the `tradingsystem` binary, so the numbers are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (_dir, cfg) = support::config(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let server = support::start(cfg).await;
        let (base, token) = (server.base.clone(), server.token.clone());
        let client = reqwest::Client::new();
        let limits = json!({"reason": "benchmark", "max_orders_per_second": 100000, "symbols": {"PETR4": {"position_limit": 1000000000}}});
        let r = client.put(format!("{base}/api/v1/risk/limits")).bearer_auth(&token).json(&limits).send().await.expect("limits");
        assert_eq!(r.status(), 200);
        // IOC limits 5 % under the market: accepted, routed, expired. Prices come from the first fill of a probe.
        let probe = client
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(&token)
            .json(&json!({"symbol": "PETR4", "side": "BUY", "type": "MARKET", "quantity": 100}))
            .send()
            .await
            .expect("probe");
        let probe: Value = probe.json().await.expect("json");
        let id = probe["id"].as_u64().expect("id");
        let px = loop {
            let o: Value = client.get(format!("{base}/api/v1/orders/{id}")).bearer_auth(&token).send().await.expect("get").json().await.expect("json");
            if let Some(p) = o["avg_fill_price"].as_f64() {
                break p;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let price = ((px * 0.95) * 100.0).round() / 100.0;
        let body = json!({"symbol": "PETR4", "side": "BUY", "type": "LIMIT", "quantity": 100, "price": price, "time_in_force": "IOC"});

        let n = if quick { 500 } else { 5_000 };
        let mut h = Histogram::<u64>::new(3).expect("hist");
        for i in 0..n + 500 {
            let t0 = Instant::now();
            let r = client.post(format!("{base}/api/v1/orders")).bearer_auth(&token).json(&body).send().await.expect("post");
            assert_eq!(r.status(), 201);
            let _ = r.bytes().await;
            if i >= 500 {
                h.record(t0.elapsed().as_nanos() as u64).expect("record");
            }
        }
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "HTTP POST /api/v1/orders, one at a time ({n} requests, keep-alive): P50 {:.0} µs P99 {:.0} µs P99.9 {:.0} µs max {:.0} µs",
            us(0.5),
            us(0.99),
            us(0.999),
            us(1.0)
        );

        let clients = 64;
        let per = if quick { 50 } else { 300 };
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, base, token, body) = (reqwest::Client::new(), base.clone(), token.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..per {
                    let r = client.post(format!("{base}/api/v1/orders")).bearer_auth(&token).json(&body).send().await.expect("post");
                    assert_eq!(r.status(), 201);
                    let _ = r.bytes().await;
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let secs = started.elapsed().as_secs_f64();
        println!("HTTP POST /api/v1/orders, {clients} concurrent clients: {} requests in {secs:.2} s = {:.0} orders/s", clients * per, (clients * per) as f64 / secs);
        server.stop().await;
    });
}
