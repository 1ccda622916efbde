//! The gateway's protections against the real server: rate limits with their headers, security headers, CORS,
//! the body limit and token refresh.

mod common;

use common::{Server, ADMIN_PASSWORD};
use serde_json::{json, Value};

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_ratelimit_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s =
        Server::start_with(dir.path(), &[("TS_RATE_LIMIT_PER_MINUTE", "5"), ("TS_LOGIN_RATE_LIMIT_PER_MINUTE", "3")]);
    let login =
        || s.client.post(s.url("/api/v1/auth/login")).json(&json!({"username": "admin", "password": ADMIN_PASSWORD}));

    // Logins: 3 a minute per IP, right or wrong password alike.
    let mut token = String::new();
    for expected_remaining in ["2", "1", "0"] {
        let r = login().send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(header(&r, "ratelimit-remaining").as_deref(), Some(expected_remaining));
        token = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    }
    let r = login().send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "one login comes back every 20 s: {retry}");
    assert_eq!(header(&r, "ratelimit-remaining").as_deref(), Some("0"));
    assert!(header(&r, "x-correlation-id").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");

    // The API: 5 a minute for this user, counted apart from other callers.
    for i in 0..5 {
        let r = s.client.get(s.url("/api/v1/orders")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(header(&r, "ratelimit-remaining"), Some((4 - i).to_string()));
        let reset: u64 = header(&r, "ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset));
    }
    let r = s.client.get(s.url("/api/v1/positions")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
    // An anonymous caller has its own bucket (by IP) and still learns it must authenticate.
    let r = s.client.get(s.url("/api/v1/orders")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Telegram's webhook has its own secret and its own pace: not limited per IP (here it just lacks the secret).
    for _ in 0..10 {
        let r = s.client.post(s.url("/api/v1/tp-capital/telegram/webhook")).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    // Health and metrics are never limited.
    for _ in 0..10 {
        assert_eq!(s.client.get(s.url("/health")).send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn security_headers_cors_body_limit_and_token_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("TS_CORS_ORIGINS", "http://desk.example:3000")]);
    let admin = s.admin().await;

    let r = s.client.get(s.url("/api/v1/orders")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(header(&r, "x-content-type-options").as_deref(), Some("nosniff"));
    assert_eq!(header(&r, "x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
    assert!(header(&r, "content-security-policy").unwrap().contains("default-src 'self'"));

    // The dashboard and the API reference: public, embedded, under the same policy.
    for (path, kind) in [
        ("/", "text/html"),
        ("/api-docs", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/lightweight-charts.js", "text/javascript"),
    ] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(header(&r, "content-type").unwrap().starts_with(kind), "{path}");
        assert!(header(&r, "content-security-policy").unwrap().contains("script-src 'self'"), "{path}");
    }
    let r = s.client.get(s.url("/assets/nope.js")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "NOT_FOUND");

    // CORS: the configured origin may call, another may not.
    let preflight = |origin: &str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url("/api/v1/orders"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
    };
    let ok = preflight("http://desk.example:3000").await.unwrap();
    assert_eq!(header(&ok, "access-control-allow-origin").as_deref(), Some("http://desk.example:3000"));
    let other = preflight("http://evil.example").await.unwrap();
    assert_eq!(header(&other, "access-control-allow-origin"), None);

    // 413 above the 1 MiB default, as JSON.
    let big = "x".repeat(1024 * 1024 + 10);
    let r = s
        .client
        .post(s.url("/api/v1/users"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(format!("{{\"username\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "PAYLOAD_TOO_LARGE");

    // Refresh: a valid token buys a new one; API keys and bad tokens do not.
    let r = s.client.post(s.url("/api/v1/auth/refresh")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let fresh: Value = r.json().await.unwrap();
    assert_eq!(fresh["role"], "admin");
    let fresh = fresh["token"].as_str().unwrap();
    assert_eq!(s.get(fresh, "/api/v1/orders").await.0, 200);
    assert_eq!(s.client.post(s.url("/api/v1/auth/refresh")).bearer_auth("nope").send().await.unwrap().status(), 401);
    let (status, key) = s.post(&admin, "/api/v1/api-keys", json!({"name": "bot", "role": "trader"})).await;
    assert_eq!(status, 201);
    let r = s
        .client
        .post(s.url("/api/v1/auth/refresh"))
        .header("x-api-key", key["key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn tokens_expire() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &[("TS_TOKEN_TTL_MINUTES", "1")]);
    let r = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    let expires: chrono::DateTime<chrono::Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires - chrono::Utc::now();
    assert!(ttl > chrono::Duration::seconds(50) && ttl <= chrono::Duration::seconds(60), "{ttl}");
}
