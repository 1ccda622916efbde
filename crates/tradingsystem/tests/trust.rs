//! Money, secrets and trust: exact prices, no secret in any answer or log, limits nobody dodges, access that ends
//! when it is taken away, a journal nobody floods, bad input answered 4xx on every backend.

mod common;

use common::Server;
use serde_json::{json, Value};

async fn symbol_starting(s: &Server, token: &str, root: &str) -> String {
    let (_, ins) = s.get(token, "/api/v1/market/instruments").await;
    ins["data"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i["symbol"].as_str().filter(|x| x.starts_with(root)))
        .unwrap()
        .to_string()
}

fn limit_order(symbol: &str, qty: i64, price: &str) -> String {
    format!(
        r#"{{"symbol":"{symbol}","side":"BUY","type":"LIMIT","quantity":{qty},"price":{price},"time_in_force":"DAY"}}"#
    )
}

#[tokio::test]
async fn prices_are_exact_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let win = symbol_starting(&s, &admin, "WIN").await;
    let wdo = symbol_starting(&s, &admin, "WDO").await;
    for (symbol, qty, price) in [
        ("PETR4", 100, "37.34001"),
        ("PETR4", 100, "37.3400001"),
        ("PETR4", 100, "37.3400000000000000001"),
        ("PETR4", 100, "2000.00001"),
        (win.as_str(), 1, "125435.00001"),
        (wdo.as_str(), 1, "5432.50001"),
    ] {
        let (st, body) = s.post_raw(&admin, "/api/v1/orders", &limit_order(symbol, qty, price)).await;
        assert_eq!(st, 422, "{symbol} @ {price}: {body}");
        assert_eq!(body["error"]["details"]["field"], "price", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("more than 4 decimal places"), "{body}");
    }
    // Off the tick grid (a valid decimal, but PETR4 trades in cents).
    let (st, body) = s.post_raw(&admin, "/api/v1/orders", &limit_order("PETR4", 100, "37.345")).await;
    assert_eq!((st, body["error"]["details"]["field"].as_str()), (422, Some("price")), "{body}");
    // Quantities: integers within the documented bound, refused before any arithmetic.
    for qty in ["1e3", "100.5", "9223372036854775807", "-100", "1000000000100"] {
        let body = format!(r#"{{"symbol":"PETR4","side":"BUY","type":"MARKET","quantity":{qty}}}"#);
        let (st, b) = s.post_raw(&admin, "/api/v1/orders", &body).await;
        assert_eq!((st, b["error"]["details"]["field"].as_str()), (422, Some("quantity")), "{qty}: {b}");
    }
    // A decimal string is read exactly too. R$ 1.01 is far outside PETR4's price band, so the risk engine refuses
    // it, and the REJECTED order carries exactly the price sent.
    let (st, o) = s.post_raw(&admin, "/api/v1/orders", &limit_order("PETR4", 100, "\"1.01\"")).await;
    assert_eq!(st, 403, "{o}");
    assert_eq!(o["error"]["details"]["order"]["price"], json!(1.01), "{o}");
    // The journal holds exact decimal strings, never a JSON float, for every price and amount.
    let journal = std::fs::read(dir.path().join("journal").join("oms.journal")).unwrap();
    let text = String::from_utf8_lossy(&journal);
    assert!(text.contains(r#""price":"1.01""#), "the journal writes the price as an exact string");
    assert!(!text.contains(r#""price":1.01"#));
}

#[tokio::test]
async fn limits_take_exact_money() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path());
    let admin = s.admin().await;
    let r = s
        .client
        .put(s.url("/api/v1/risk/limits"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(r#"{"reason":"exactness","max_notional":1000000.00001}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"]["details"]["field"], "max_notional", "{b}");
}
