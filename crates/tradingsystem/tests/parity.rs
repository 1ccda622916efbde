//! Same code, same result: a strategy in `serve` on recorded data replayed at full speed places the same orders and
//! gets the same fills as the backtest of that data. Live, the replayed exchange re-centres its book on each print
//! (one tick either side), so the backtest runs with `--slippage-ticks 1`: a market order then fills at the trade
//! ± one tick in both.

mod common;

use common::{eventually_within, generate_market_data, Server};
use serde_json::Value;
use std::time::Duration;

const PARAMS: [&str; 4] = ["fast=2", "slow=8", "price=trade", "hold_ticks=150"];

#[tokio::test]
async fn serve_on_a_replay_and_the_backtest_place_the_same_orders_and_get_the_same_fills() {
    let dir = tempfile::tempdir().unwrap();
    let hist = dir.path().join("hist");
    generate_market_data(&hist, &["--kind", "trades", "--ticks", "3000"]);

    // The backtest.
    let mut args: Vec<String> = ["backtest", "--strategy", "sma_cross", "--symbols", "PETR4", "--slippage-ticks", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for p in PARAMS {
        args.extend(["--param".to_string(), p.to_string()]);
    }
    args.extend([
        "--data".into(),
        hist.display().to_string(),
        "--out".into(),
        dir.path().join("bt").display().to_string(),
    ]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradingsystem")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(dir.path().join("bt/fills.csv")).unwrap();
    let expected: Vec<(String, String, String)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[3].to_string(), f[4].to_string(), f[5].to_string()) // side, quantity, price
        })
        .collect();
    assert!(expected.len() >= 4, "the backtest traded: {expected:?}");

    // The same strategy live, on the same data replayed at full speed.
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).unwrap();
    let params = PARAMS.iter().map(|p| {
        let (k, v) = p.split_once('=').unwrap();
        if v.parse::<f64>().is_ok() {
            format!("{k} = {v}")
        } else {
            format!("{k} = \"{v}\"")
        }
    });
    std::fs::write(
        live.join("tradingsystem.toml"),
        format!(
            "[[strategies]]\nname = \"parity\"\nkind = \"sma_cross\"\nsymbols = [\"PETR4\"]\nparams = {{ {} }}\n",
            params.collect::<Vec<_>>().join(", ")
        ),
    )
    .unwrap();
    let source = format!("replay:{}@max", hist.join("market/trades").display());
    let s = Server::start_with(&live, &[("TS_MARKET", source.as_str())]);
    let admin = s.admin().await;
    eventually_within(Duration::from_secs(60), || async {
        let (_, st) = s.get(&admin, "/api/v1/market/status").await;
        (st["connection"]["market_data"] == "DISCONNECTED").then_some(())
    })
    .await;
    // Every order of the strategy finished and its fills booked.
    let orders: Vec<Value> = eventually_within(Duration::from_secs(30), || async {
        let (_, list) = s.get(&admin, "/api/v1/orders?limit=500").await;
        let mine: Vec<Value> =
            list["data"].as_array().unwrap().iter().filter(|o| o["source"] == "strategy:parity").cloned().collect();
        let done =
            mine.iter().all(|o| ["FILLED", "CANCELED", "EXPIRED", "REJECTED"].contains(&o["status"].as_str().unwrap()));
        (done && !mine.is_empty()).then_some(mine)
    })
    .await;
    let mut orders = orders;
    orders.sort_by_key(|o| o["id"].as_u64());
    let mut got = Vec::new();
    for o in &orders {
        let (_, full) = s.get(&admin, &format!("/api/v1/orders/{}", o["id"])).await;
        for f in full["fills"].as_array().unwrap() {
            let price =
                backtest::report::decimal(domain::Price::from_f64(f["price"].as_f64().unwrap()).unwrap().units());
            got.push((full["side"].as_str().unwrap().to_string(), f["quantity"].to_string(), price));
        }
    }
    assert_eq!(got, expected, "live fills (left) against the backtest's (right)");
}
