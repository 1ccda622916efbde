//! Protection at the edge: rate limits per caller, request timeouts, CORS and security headers.
//!
//! Rate limits are GCRA buckets (governor) keyed by who is calling, as far as it is proven: a known API key, else
//! the user a bearer token was signed for, else the client's IP. An API key not yet verified is charged to the IP
//! before it is looked up, so a client inventing a new key for every request spends its IP's budget (and, once that
//! is gone, gets 429 without a lookup). Logins have their own, stricter bucket per IP, so guessing passwords is
//! slow even from many user names. Every limited response carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset`; a 429 adds `Retry-After`.

use crate::auth::{cached_api_key, hash_api_key, signed_principal, verify_api_key, Credentials, Resolved, SignedToken};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use serde_json::json;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// What the operator can tune; `0` requests per minute turns a limit off.
#[derive(Debug, Clone)]
pub struct ProtectionConfig {
    pub requests_per_minute: u32,
    pub logins_per_minute: u32,
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser page served elsewhere; empty: same origin only.
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
}

impl Default for ProtectionConfig {
    fn default() -> Self {
        ProtectionConfig {
            requests_per_minute: 300,
            logins_per_minute: 10,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            body_limit: crate::BODY_LIMIT,
        }
    }
}

/// Callers tracked per bucket before idle ones are dropped early (they are also dropped every minute).
const MAX_TRACKED_CALLERS: usize = 100_000;

type Keyed = RateLimiter<String, HashMapStateStore<String>, DefaultClock, StateInformationMiddleware>;

struct Bucket {
    limiter: Keyed,
    per_minute: u32,
}

impl Bucket {
    fn new(per_minute: u32) -> Option<Bucket> {
        let n = NonZeroU32::new(per_minute)?;
        // The whole minute's allowance may be spent in a burst; it refills evenly.
        let limiter = RateLimiter::hashmap(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>();
        Some(Bucket { limiter, per_minute })
    }

    /// `Ok(remaining)` or `Err(wait)`.
    fn check(&self, key: &str) -> Result<u32, Duration> {
        // Keys are proven callers and IPs, but a wide botnet still makes many IPs: past this, callers whose buckets
        // are full again are forgotten before the store grows further.
        if self.limiter.len() >= MAX_TRACKED_CALLERS {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&key.to_string()) {
            Ok(snapshot) => Ok(snapshot.remaining_burst_capacity()),
            Err(not_until) => Err(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    /// Seconds until the bucket is full again, for `RateLimit-Reset`.
    fn reset_after(&self, remaining: u32) -> u64 {
        let used = u64::from(self.per_minute.saturating_sub(remaining));
        (used * 60).div_ceil(u64::from(self.per_minute))
    }
}

pub struct RateLimits {
    general: Option<Bucket>,
    login: Option<Bucket>,
}

impl RateLimits {
    pub fn new(cfg: &ProtectionConfig) -> Arc<RateLimits> {
        Arc::new(RateLimits {
            general: Bucket::new(cfg.requests_per_minute),
            login: Bucket::new(cfg.logins_per_minute),
        })
    }

    /// Forgets callers whose buckets are full again, so one-off IPs do not accumulate.
    pub fn purge(&self) {
        for b in [&self.general, &self.login].into_iter().flatten() {
            b.limiter.retain_recent();
            b.limiter.shrink_to_fit();
        }
    }
}

fn client_ip(req: &Request) -> String {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".into(), |c| c.0.ip().to_string())
}

/// Who is calling, for the bucket: proven callers by identity, everyone else by IP.
enum Caller {
    Known(String),
    /// A bearer token with a good signature: counted as its user, its standing read once for the handler.
    Signed(SignedToken),
    /// An API key in the cache: counted as the key, resolved without a lookup.
    CachedKey(String, String),
    /// An API key not in the cache: charged to the IP, then looked up.
    UnverifiedKey(String),
}

fn caller(st: &AppState, req: &Request, ip: &str) -> Caller {
    match Credentials::of(req.headers(), None) {
        Ok(Credentials::Bearer(token)) => match SignedToken::check(st, token) {
            Some(signed) => Caller::Signed(signed),
            None => Caller::Known(ip.to_string()),
        },
        Ok(Credentials::ApiKey(key)) => match cached_api_key(st, key) {
            Some(hash) => Caller::CachedKey(key.to_string(), format!("key:{}", &hash[..16])),
            None => Caller::UnverifiedKey(key.to_string()),
        },
        Ok(Credentials::None) | Err(_) => Caller::Known(ip.to_string()),
    }
}

fn set(headers: &mut http::HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// Applies the login bucket to `POST /api/v1/auth/login` and the general bucket to the rest of the API and `/ws`.
pub async fn rate_limit(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // Telegram's webhook pushes from Telegram's addresses at the channels' pace and checks its own secret; a
    // per-IP budget meant for people would drop signals in a busy minute.
    let limited = (path.starts_with("/api/") || path == "/ws") && path != "/api/v1/tp-capital/telegram/webhook";
    if !limited || req.method() == Method::OPTIONS {
        return next.run(req).await;
    }
    let is_login = req.method() == Method::POST && path == "/api/v1/auth/login";
    let ip = format!("ip:{}", client_ip(&req));
    let (bucket, key, scope) = if is_login {
        (st.rate_limits.login.as_ref(), ip, "login")
    } else {
        let Some(bucket) = st.rate_limits.general.as_ref() else { return next.run(req).await };
        let key = match caller(&st, &req, &ip) {
            Caller::Known(key) => key,
            // Authenticated here once; the handler's extractor takes the outcome from the request.
            Caller::Signed(signed) => {
                let key = format!("user:{}", signed.subject());
                let resolved = signed_principal(&st, signed).await;
                req.extensions_mut().insert(Resolved(resolved));
                key
            }
            Caller::CachedKey(api_key, key) => {
                let resolved = verify_api_key(&st, &api_key).await;
                req.extensions_mut().insert(Resolved(resolved));
                key
            }
            Caller::UnverifiedKey(api_key) => {
                if let Err(wait) = bucket.check(&ip) {
                    return too_many(bucket, &ip, "api", wait);
                }
                let resolved = verify_api_key(&st, &api_key).await;
                let proven = resolved.is_ok();
                req.extensions_mut().insert(Resolved(resolved));
                if !proven {
                    // Already charged to the IP; the handler answers 401 from the resolved outcome.
                    return next.run(req).await;
                }
                format!("key:{}", &hash_api_key(&api_key)[..16])
            }
        };
        (Some(bucket), key, "api")
    };
    let Some(bucket) = bucket else { return next.run(req).await };
    match bucket.check(&key) {
        Ok(remaining) => {
            let mut resp = next.run(req).await;
            let h = resp.headers_mut();
            set(h, "ratelimit-limit", bucket.per_minute);
            set(h, "ratelimit-remaining", remaining);
            set(h, "ratelimit-reset", bucket.reset_after(remaining));
            resp
        }
        Err(wait) => too_many(bucket, &key, scope, wait),
    }
}

fn too_many(bucket: &Bucket, key: &str, scope: &'static str, wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    metrics::counter!("ts_http_rate_limited_total", "scope" => scope).increment(1);
    tracing::warn!(%key, scope, retry_after_s = secs, "rate limited");
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        format!("too many requests: at most {} per minute; retry in {secs} s", bucket.per_minute),
    )
    .with_details(json!({ "limit_per_minute": bucket.per_minute, "retry_after_seconds": secs }))
    .into_response();
    let h = resp.headers_mut();
    set(h, "retry-after", secs);
    set(h, "ratelimit-limit", bucket.per_minute);
    set(h, "ratelimit-remaining", 0);
    set(h, "ratelimit-reset", secs);
    resp
}

/// A handler that takes longer than the configured timeout is answered 503 `TIMEOUT` (its work is dropped; the
/// Order Manager's decisions are journaled before any await, so a dropped submit either happened or did not).
pub async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/ws" {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            metrics::counter!("ts_http_timeouts_total").increment(1);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TIMEOUT",
                format!("the request took longer than {} s", limit.as_secs_f64()),
            )
            .into_response()
        }
    }
}

/// Security headers on every response. The dashboard's policy allows only its own scripts and the WebSocket of
/// the same host; inline styles are allowed because the vendored chart library sets them on the elements it makes
/// (scripts, the dangerous half, stay strict). API responses are never cached.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "permissions-policy", "camera=(), microphone=(), geolocation=()");
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self' ws: wss:; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    if api && !h.contains_key(http::header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    resp
}

/// CORS for the configured origins (none by default: the dashboard is same-origin and needs no CORS).
pub fn cors(cfg: &ProtectionConfig) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if cfg.cors_origins.is_empty() {
        return None;
    }
    let any = cfg.cors_origins.iter().any(|o| o == "*");
    let origins = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(cfg.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                http::header::AUTHORIZATION,
                http::header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-correlation-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-correlation-id"),
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
                HeaderName::from_static("retry-after"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_slow_handler_is_answered_503_timeout() {
        let app = axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/fast", axum::routing::get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(Duration::from_millis(50), timeout));
        let get = |uri: &str| axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
        let resp = app.clone().oneshot(get("/slow")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(resp.into_body(), 10_000).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "TIMEOUT");
        assert_eq!(app.oneshot(get("/fast")).await.unwrap().status(), StatusCode::OK);
    }

    #[test]
    fn buckets_allow_the_quota_then_refuse_with_a_wait() {
        let b = Bucket::new(3).unwrap();
        assert_eq!(b.check("a"), Ok(2));
        assert_eq!(b.check("a"), Ok(1));
        assert_eq!(b.check("a"), Ok(0));
        let wait = b.check("a").unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        assert_eq!(b.check("b"), Ok(2), "callers have their own buckets");
        assert_eq!(b.reset_after(0), 60);
        assert_eq!(b.reset_after(3), 0);
        assert!(Bucket::new(0).is_none(), "0 turns the limit off");
    }
}
