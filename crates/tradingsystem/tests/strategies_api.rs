//! Live strategies in `serve`: one from `[[strategies]]` trades on the simulated market through the Order Manager;
//! start and stop over HTTP; bad definitions are refused; the kill switch refuses their orders like anyone's.

mod common;

use common::{eventually_within, Server};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn a_configured_strategy_trades_and_can_be_stopped_started_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tradingsystem.toml"),
        r#"
[[strategies]]
name = "cross"
kind = "sma_cross"
symbols = ["PETR4"]
params = { fast = 2, slow = 4, price = "trade" }
max_loss = 100000

[[strategies]]
name = "idle"
kind = "breakout"
symbols = ["VALE3"]
enabled = false
"#,
    )
    .unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let trader = s.user(&admin, "tina", "trader").await;
    let viewer = s.user(&admin, "vic", "viewer").await;

    let (status, list) = s.get(&viewer, "/api/v1/strategies").await;
    assert_eq!(status, 200, "{list}");
    let states: Vec<(String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap().to_string(), x["state"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(states, vec![("cross".into(), "running".into()), ("idle".into(), "stopped".into())]);

    // It trades on the simulated market: orders tagged with its name, booked to its account, fills counted.
    let running: Value = eventually_within(Duration::from_secs(30), || {
        let (s, viewer) = (&s, viewer.clone());
        async move {
            let (_, v) = s.get(&viewer, "/api/v1/strategies/cross").await;
            (v["fills"].as_u64().unwrap_or(0) > 0).then_some(v)
        }
    })
    .await;
    assert_eq!(running["account"], "strategy-cross");
    let (_, orders) = s.get(&viewer, "/api/v1/orders?limit=200").await;
    assert!(
        orders["data"].as_array().unwrap().iter().any(|o| o["source"] == "strategy:cross" && o["symbol"] == "PETR4"),
        "{orders}"
    );

    // Stop and start (trader); a viewer may not.
    assert_eq!(s.post(&viewer, "/api/v1/strategies/cross/stop", json!({})).await.0, 403);
    let (status, stopped) = s.post(&trader, "/api/v1/strategies/cross/stop", json!({})).await;
    assert_eq!((status, stopped["state"].as_str()), (200, Some("stopped")), "{stopped}");
    let (status, started) = s.post(&trader, "/api/v1/strategies/cross/start", json!({})).await;
    assert_eq!((status, started["state"].as_str()), (200, Some("running")), "{started}");
    assert_eq!(s.post(&trader, "/api/v1/strategies/nope/start", json!({})).await.0, 404);

    // Bad definitions: unknown kind, bad parameter, bad name, a name taken.
    for (body, code) in [
        (json!({"name": "x", "kind": "nope", "symbols": ["PETR4"]}), 422),
        (json!({"name": "x", "kind": "sma_cross", "symbols": ["PETR4"], "params": {"fast": 9, "slow": 3}}), 422),
        (json!({"name": "Bad Name", "kind": "sma_cross", "symbols": ["PETR4"]}), 422),
        (json!({"name": "x", "kind": "sma_cross", "symbols": ["NOPE3"]}), 422),
        (json!({"name": "cross", "kind": "sma_cross", "symbols": ["PETR4"]}), 409),
    ] {
        let (status, e) = s.post(&trader, "/api/v1/strategies", body.clone()).await;
        assert_eq!(status, code, "{body} → {e}");
    }
    let (status, added) = s
        .post(
            &trader,
            "/api/v1/strategies",
            json!({"name": "late", "kind": "breakout", "symbols": ["VALE3"], "enabled": false}),
        )
        .await;
    assert_eq!((status, added["state"].as_str()), (201, Some("stopped")), "{added}");

    // The kill switch refuses its orders like anyone's.
    let (status, _) = s.post(&admin, "/api/v1/risk/kill-switch", json!({"reason": "test"})).await;
    assert_eq!(status, 200);
    let before = s.get(&viewer, "/api/v1/strategies/cross").await.1["refused"].as_u64().unwrap();
    eventually_within(Duration::from_secs(30), || {
        let (s, viewer) = (&s, viewer.clone());
        async move {
            let (_, v) = s.get(&viewer, "/api/v1/strategies/cross").await;
            (v["refused"].as_u64().unwrap() > before).then_some(())
        }
    })
    .await;
    assert_eq!(s.get(&viewer, "/api/v1/strategies/cross").await.1["state"], "running", "refusals do not stop it");
    assert_eq!(s.send(Method::DELETE, &admin, "/api/v1/risk/kill-switch", json!({"reason": "done"})).await.0, 200);
}
