//! Telegram webhook → stored signal: the full server in-process on a temporary data dir (SQLite), a registered
//! source channel, and one signal message per request. The webhook answers only after the signal is stored (and
//! the ingestion log written), so the response time is the webhook → stored latency.
//!
//! `cargo bench -p tradingsystem --bench webhook` (add `-- --quick` for a short run).

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::time::Instant;

// The allocator of the `tradingsystem` binary, so the numbers are the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod support;

const SECRET: &str = "bench-webhook-secret";

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: i64 = if quick { 500 } else { 5_000 };
    let (_dir, cfg) = support::config(&[("TS_TELEGRAM_WEBHOOK_SECRET", SECRET)]);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let server = support::start(cfg).await;
        let (base, token) = (server.base.clone(), server.token.clone());
        let client = reqwest::Client::new();
        let channel = json!({"label": "bench", "channel_id": "-1001649127710", "channel_type": "source"});
        let r = client.post(format!("{base}/api/v1/tp-capital/telegram/channels")).bearer_auth(&token).json(&channel).send().await.expect("channel");
        assert_eq!(r.status(), 201);
        let mut h = Histogram::<u64>::new(3).expect("hist");
        let started = Instant::now();
        for i in 0..n {
            let text = format!("🟢Swing Trade\nAtivo: PETR4\nCompra: 38,{:02} a 38,{:02}\nAlvo 1: 39,40\nAlvo final: 41,00\nStop: 37,50", i % 50, i % 50 + 10);
            let update = json!({"update_id": i, "channel_post": {"message_id": i + 1, "chat": {"id": -1001649127710_i64, "type": "channel"}, "date": 1759868759, "text": text}});
            let t0 = Instant::now();
            let r = client
                .post(format!("{base}/api/v1/tp-capital/telegram/webhook"))
                .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                .json(&update)
                .send()
                .await
                .expect("webhook");
            let status = r.status();
            let body: Value = r.json().await.expect("json");
            h.record(t0.elapsed().as_nanos() as u64).expect("record");
            assert!(status == 200 && body["outcome"] == "parsed", "{status} {body}");
        }
        let secs = started.elapsed().as_secs_f64();
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
        println!(
            "webhook → stored (SQLite), {n} signals one at a time: P50 {:.2} ms P99 {:.2} ms P99.9 {:.2} ms max {:.2} ms; {:.0} signals/s",
            ms(0.5),
            ms(0.99),
            ms(0.999),
            ms(1.0),
            n as f64 / secs
        );
        server.stop().await;
    });
}
