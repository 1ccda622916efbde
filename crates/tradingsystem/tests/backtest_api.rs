//! The backtest job API against the real server: start, progress, figures, report files, errors, removal.

mod common;

use common::{eventually_within, generate_market_data, Server};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn a_backtest_job_runs_reports_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    generate_market_data(dir.path(), &["--kind", "quotes", "--ticks", "30000"]);
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let viewer = s.user(&admin, "vera", "viewer").await;
    let body = json!({
        "strategy": "sma_cross", "symbols": ["PETR4"], "from": "2025-03-10", "to": "2025-03-10",
        "params": {"fast": 1, "slow": 50, "hold_ticks": 100},
        "settings": {"capital": 50000, "slippage_ticks": 1},
    });

    // Bad requests name what is wrong; a viewer may look but not start.
    for (patch, field) in [
        (json!({"strategy": "nope"}), "strategy"),
        (json!({"params": {"fsat": 3}}), "params"),
        (json!({"symbols": ["VALE3"]}), "symbols"),
        (json!({"from": "2025-03-11"}), "from"),
    ] {
        let mut b = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            b[k] = v.clone();
        }
        let (status, e) = s.post(&admin, "/api/v1/backtests", b).await;
        assert_eq!((status, e["error"]["details"]["field"].as_str()), (422, Some(field)), "{e}");
    }
    let (status, e) =
        s.post(&admin, "/api/v1/backtests", json!({"strategy": "sma_cross", "symbols": ["PETR4"], "bogus": 1})).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(s.post(&viewer, "/api/v1/backtests", body.clone()).await.0, 403);
    assert_eq!(s.get(&viewer, "/api/v1/backtests/bt-999").await.0, 404);

    let (status, job) = s.post(&admin, "/api/v1/backtests", body.clone()).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert!(job["expected_events"].as_u64().unwrap() >= 30_000);
    let done: Value = eventually_within(Duration::from_secs(60), || {
        let (s, id) = (&s, &id);
        let viewer = viewer.clone();
        async move {
            let (_, v) = s.get(&viewer, &format!("/api/v1/backtests/{id}")).await;
            assert!(v["progress"].as_f64().unwrap() <= 1.0);
            assert_ne!(v["status"], "failed", "{v}");
            (v["status"] == "done").then_some(v)
        }
    })
    .await;
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["summary"]["strategy"], "sma_cross");
    assert_eq!(done["summary"]["capital"], 50000.0);
    assert!(done["summary"]["orders"].as_u64().unwrap() > 0);
    assert!(done["equity"].as_array().unwrap().len() > 2);

    let (_, list) = s.get(&viewer, "/api/v1/backtests").await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(list["data"][0]["equity"].as_array().unwrap().is_empty(), "lists leave the curve out");

    let r = s
        .client
        .get(s.url(&format!("/api/v1/backtests/{id}/files/report.html")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("<svg"));
    let r = s
        .client
        .get(s.url(&format!("/api/v1/backtests/{id}/files/fills.csv")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().starts_with("order_id,ts,symbol"));
    for bad in ["job.json", "..%2Fjob.json", "nope.csv"] {
        let (status, _) = s.get(&viewer, &format!("/api/v1/backtests/{id}/files/{bad}")).await;
        assert_eq!(status, 404, "{bad}");
    }

    // A restart lists the finished run again, with its figures.
    let mut s = s;
    s.stop();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let (status, again) = s.get(&admin, &format!("/api/v1/backtests/{id}")).await;
    assert_eq!((status, &again["summary"]["orders"]), (200, &done["summary"]["orders"]));

    assert_eq!(s.send(reqwest::Method::DELETE, &admin, &format!("/api/v1/backtests/{id}"), Value::Null).await.0, 204);
    assert_eq!(s.get(&admin, &format!("/api/v1/backtests/{id}")).await.0, 404);
    assert!(!dir.path().join("backtests").join(&id).exists(), "its report is gone");
    assert_eq!(s.send(reqwest::Method::DELETE, &admin, &format!("/api/v1/backtests/{id}"), Value::Null).await.0, 404);
}
