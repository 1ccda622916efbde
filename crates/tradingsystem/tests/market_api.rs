//! Data Capture's REST endpoints against the real server and its simulated market.

mod common;

use common::{eventually, Server};
use serde_json::Value;

#[tokio::test]
async fn market_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let viewer = s.user(&admin, "watcher", "viewer").await;

    let (st, ins) = s.get(&viewer, "/api/v1/market/instruments").await;
    assert_eq!(st, 200);
    let list = ins["data"].as_array().unwrap();
    let petr = list.iter().find(|i| i["symbol"] == "PETR4").expect("PETR4 listed");
    assert_eq!(
        (petr["tick_size"].as_f64(), petr["lot"].as_i64(), petr["exchange"].as_str()),
        (Some(0.01), Some(100), Some("B"))
    );
    let win = list.iter().find(|i| i["symbol"].as_str().unwrap().starts_with("WIN")).expect("WIN listed");
    assert_eq!(
        (win["tick_size"].as_f64(), win["multiplier"].as_f64(), win["exchange"].as_str()),
        (Some(5.0), Some(0.2), Some("F"))
    );

    // The simulated tape flows into Data Capture.
    let trades: Value = eventually(|| async {
        let (_, t) = s.get(&viewer, "/api/v1/market/trades?symbol=PETR4&limit=5").await;
        (t["data"].as_array().is_some_and(|a| a.len() == 5)).then_some(t)
    })
    .await;
    let t0 = &trades["data"][0];
    for key in
        ["trade_id", "price", "quantity", "aggressor", "buyer_agent", "seller_agent", "exchange_ts", "receive_ts"]
    {
        assert!(t0.get(key).is_some(), "trade has {key}");
    }
    assert!(trades["data"][0]["trade_id"].as_u64() > trades["data"][1]["trade_id"].as_u64(), "newest first");

    let (st, book) = s.get(&viewer, "/api/v1/market/book?symbol=PETR4&depth=10").await;
    assert_eq!(st, 200);
    let (bids, asks) = (book["bids"].as_array().unwrap(), book["asks"].as_array().unwrap());
    assert_eq!((bids.len(), asks.len()), (10, 10));
    assert!(bids[0]["price"].as_f64() < asks[0]["price"].as_f64(), "not crossed");
    assert!(bids[0]["price"].as_f64() > bids[1]["price"].as_f64(), "bids best first");
    assert!(asks[0]["price"].as_f64() < asks[1]["price"].as_f64(), "asks best first");
    let (st, quote) = s.get(&viewer, "/api/v1/market/quote?symbol=PETR4").await;
    assert_eq!(st, 200);
    assert!(quote["bid"]["price"].is_number() && quote["ask"]["price"].is_number());

    let (st, candles) = s.get(&viewer, "/api/v1/market/candles?symbol=PETR4&interval=1m").await;
    assert_eq!(st, 200);
    let c = &candles["data"].as_array().unwrap().last().expect("a candle")["volume"];
    assert!(c.as_i64().unwrap() > 0);
    let (st, _) = s.get(&viewer, "/api/v1/market/candles?symbol=PETR4&interval=1d&from=2020-01-01T00:00:00Z").await;
    assert_eq!(st, 200);

    let (_, status) = s.get(&viewer, "/api/v1/market/status").await;
    assert_eq!(status["source"], "sim");
    assert_eq!(status["connection"]["market_data"], "CONNECTED");
    assert_eq!(status["connection"]["login"], "CONNECTED");
    assert!(status["transitions"].as_array().unwrap().len() >= 2, "connecting, then connected");
    assert!(status["symbols"]["PETR4"]["trades"].as_u64().unwrap() > 0);
    assert!(status["symbols"]["PETR4"]["open_gaps"].is_array());

    for (path, field) in [
        ("/api/v1/market/trades", "symbol"),
        ("/api/v1/market/trades?symbol=NOPE3", "symbol"),
        ("/api/v1/market/book?symbol=PETR4&depth=0", "depth"),
        ("/api/v1/market/candles?symbol=PETR4&interval=2m", "interval"),
        ("/api/v1/market/candles?symbol=PETR4&from=soon", "from"),
        ("/api/v1/market/trades?symbol=PETR4&limit=abc", "limit"),
    ] {
        let (st, e) = s.get(&viewer, path).await;
        assert_eq!((st, e["error"]["details"]["field"].as_str()), (422, Some(field)), "{path}: {e}");
    }
    assert_eq!(s.client.get(s.url("/api/v1/market/trades?symbol=PETR4")).send().await.unwrap().status(), 401);
}

/// A lossy link between the market and Data Capture: gaps are detected, shown in the status and backfilled.
#[tokio::test]
async fn gaps_are_detected_and_backfilled() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tradingsystem.toml"), "[sim]\ntrades_per_second = 200\ndrop_every = 25\n").unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let status = eventually(|| async {
        let (_, st) = s.get(&admin, "/api/v1/market/status").await;
        (st["symbols"]["PETR4"]["gaps_detected"].as_u64().unwrap_or(0) >= 3).then_some(st)
    })
    .await;
    assert!(status["history_requests"]["sent"].as_u64().unwrap() >= 3);
    let backfilled = eventually(|| async {
        let (_, st) = s.get(&admin, "/api/v1/market/status").await;
        (st["symbols"]["PETR4"]["backfilled"].as_u64().unwrap_or(0) >= 3).then_some(st)
    })
    .await;
    assert!(backfilled["history_requests"]["completed"].as_u64().unwrap() >= 3);
    let metrics = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("ts_md_gaps_total"));
}

/// The tape is recorded to Parquet, and a graceful stop flushes what was buffered.
#[tokio::test]
async fn market_data_is_recorded_to_parquet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tradingsystem.toml"), "[sim]\ntrades_per_second = 200\n").unwrap();
    let mut s = Server::start(dir.path());
    let admin = s.admin().await;
    eventually(|| async {
        let (_, st) = s.get(&admin, "/api/v1/market/status").await;
        (st["symbols"]["PETR4"]["trades"].as_u64().unwrap_or(0) > 200).then_some(())
    })
    .await;
    s.stop();
    let trades = market_store::read_trades(&dir.path().join("market").join("trades")).unwrap();
    let petr: Vec<u64> = trades.iter().filter(|t| t.symbol == "PETR4").map(|t| t.trade_id).collect();
    assert!(petr.len() > 200, "{} PETR4 trades recorded", petr.len());
    let mut sorted = petr.clone();
    sorted.sort_unstable();
    assert!(sorted.windows(2).all(|w| w[1] == w[0] + 1), "every PETR4 trade after the first recorded one is on disk");
    for ds in ["quotes", "book_snapshots", "candles"] {
        assert!(dir.path().join("market").join(ds).exists(), "{ds} recorded");
    }
    let leftovers =
        walk(&dir.path().join("market")).into_iter().filter(|p| p.to_string_lossy().ends_with(".tmp")).count();
    assert_eq!(leftovers, 0, "no temporary files after a clean stop");
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// `market generate` writes synthetic Parquet; `TS_MARKET=replay:PATH@max` plays it through the same pipeline, and
/// the paper broker trades against the replayed prices.
#[tokio::test]
async fn replay_of_generated_data() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradingsystem"))
        .args(["market", "generate", "--symbol", "VALE3", "--ticks", "3000", "--seed", "7", "--out"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recorded = market_store::read_trades(&data.path().join("market/trades")).unwrap();
    assert_eq!(recorded.len(), 3000);

    let dir = tempfile::tempdir().unwrap();
    let source = format!("replay:{}@max", data.path().join("market/trades").display());
    let s = Server::start_with(dir.path(), &[("TS_MARKET", source.as_str())]);
    let admin = s.admin().await;
    let status = eventually(|| async {
        let (_, st) = s.get(&admin, "/api/v1/market/status").await;
        (st["connection"]["market_data"] == "DISCONNECTED").then_some(st)
    })
    .await;
    assert_eq!(status["source"], "replay");
    assert!(status["connection"]["reason"].as_str().unwrap().contains("end of replay"));
    assert_eq!(status["symbols"]["VALE3"]["trades"], 3000);
    let (_, tape) = s.get(&admin, "/api/v1/market/trades?symbol=VALE3&limit=1").await;
    assert_eq!(tape["data"][0]["trade_id"].as_u64(), recorded.iter().map(|t| t.trade_id).max());
    let last = recorded.iter().max_by_key(|t| t.trade_id).unwrap().price.to_f64();

    // The exchange follows the replayed tape: a market order fills next to the last replayed price.
    let (st, o) = s
        .post(
            &admin,
            "/api/v1/orders",
            serde_json::json!({"symbol": "VALE3", "side": "BUY", "type": "MARKET", "quantity": 100}),
        )
        .await;
    assert_eq!(st, 201, "{o}");
    let id = o["id"].as_u64().unwrap();
    let filled = eventually(|| async {
        let (_, o) = s.get(&admin, &format!("/api/v1/orders/{id}")).await;
        (o["status"] == "FILLED").then_some(o)
    })
    .await;
    let px = filled["avg_fill_price"].as_f64().unwrap();
    assert!((px - last).abs() < 0.05, "filled at {px}, last replayed {last}");
}
