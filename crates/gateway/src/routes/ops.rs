use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

#[utoipa::path(get, path = "/healthz", tag = "ops", summary = "Liveness", security(()), responses((status = 200, description = "The process is alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "alive" }))
}

#[utoipa::path(get, path = "/health", tag = "ops", summary = "Health with per-dependency checks", security(()), responses((status = 200, description = "Healthy, with per-dependency checks"), (status = 503, description = "A dependency is down")))]
/// Per-dependency checks; 503 when any critical one (database, journal, broker) fails.
pub async fn health(State(st): State<AppState>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut unhealthy = false;
    let mut degraded = false;
    let db = tokio::time::timeout(std::time::Duration::from_secs(2), st.db.ping()).await;
    let db_ok = matches!(db, Ok(Ok(())));
    unhealthy |= !db_ok;
    checks.insert("database".into(), json!({ "status": if db_ok { "up" } else { "down" }, "backend": format!("{:?}", st.db.backend()).to_lowercase() }));
    match st.oms.journal_failure() {
        None => checks.insert("journal".into(), json!({ "status": "up", "records": st.oms.journal().durable_seq() })),
        Some(e) => {
            unhealthy = true;
            checks.insert("journal".into(), json!({ "status": "down", "error": e }))
        }
    };
    match st.oms.broker_connection() {
        Some(c) => {
            // Several brokers: some down is degraded (their accounts wait), all down is unhealthy.
            let status = match c.routing {
                domain::broker::LinkState::Connected => "up",
                domain::broker::LinkState::Degraded => "degraded",
                _ => "down",
            };
            unhealthy |= status == "down";
            degraded |= status == "degraded";
            let brokers: Vec<_> = st
                .brokers
                .iter()
                .map(|b| json!({ "name": b.name, "kind": b.kind, "can_route": b.broker.connection().can_route() }))
                .collect();
            checks.insert("broker".into(), json!({ "status": status, "connection": c, "brokers": brokers }));
        }
        None => {
            unhealthy = true;
            checks.insert("broker".into(), json!({ "status": "down", "error": "no broker attached" }));
        }
    }
    let age = st.market_data.last_trade_ts().map(|t| (chrono::Utc::now() - t).num_milliseconds());
    let stale = age.is_none_or(|a| a > 10_000);
    degraded |= stale;
    checks.insert(
        "feed".into(),
        json!({ "status": if stale { "stale" } else { "up" }, "source": st.market_data.source(), "last_trade_age_ms": age }),
    );
    let bus_up = st.bus.is_up();
    unhealthy |= !bus_up;
    checks.insert("bus".into(), json!({ "status": if bus_up { "up" } else { "down" }, "kind": st.bus.describe() }));
    let status = if unhealthy {
        "unhealthy"
    } else if degraded {
        "degraded"
    } else {
        "healthy"
    };
    let code = if unhealthy { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = json!({
        "status": status,
        "checks": checks,
        "uptime_seconds": st.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    (code, Json(body)).into_response()
}

#[utoipa::path(get, path = "/ready", tag = "ops", summary = "Readiness", security(()), responses((status = 200, description = "Ready to serve"), (status = 503, description = "Not ready")))]
/// Ready once the database and the journal answer (requests are only served after recovery has finished).
pub async fn ready(State(st): State<AppState>) -> Response {
    let db_ok = matches!(tokio::time::timeout(std::time::Duration::from_secs(2), st.db.ping()).await, Ok(Ok(())));
    let journal_ok = st.oms.journal_failure().is_none();
    if db_ok && journal_ok {
        (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response()
    } else {
        ApiError::unavailable(format!(
            "not ready: database {}, journal {}",
            if db_ok { "up" } else { "down" },
            if journal_ok { "up" } else { "down" }
        ))
        .into_response()
    }
}

#[utoipa::path(get, path = "/metrics", tag = "ops", summary = "Prometheus metrics", security(()), responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(st): State<AppState>) -> Response {
    match &st.metrics {
        Some(h) => {
            for (status, n) in st.oms.order_counts() {
                metrics::gauge!("ts_orders", "status" => status.as_str()).set(n as f64);
            }
            let rs = st.oms.risk_status();
            if let Some(pnl) = rs.daily_pnl {
                metrics::gauge!("ts_daily_pnl_brl").set(pnl.to_f64());
            }
            metrics::gauge!("ts_open_orders").set(rs.open_orders as f64);
            metrics::gauge!("ts_kill_switch_active").set(if rs.kill_switch.active { 1.0 } else { 0.0 });
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.render()).into_response()
        }
        None => ApiError::unavailable("metrics recorder not installed").into_response(),
    }
}
