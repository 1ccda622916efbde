//! TP-Capital over HTTP against the real server.

mod common;

use common::Server;
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
