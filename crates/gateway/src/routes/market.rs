//! Data Capture endpoints: instruments, the tape, quotes, the book, candles and the feed's status.

use super::{parse_time, query, QueryMap};
use crate::auth::{Principal, Role};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use data_capture::FeedStatus;
use domain::Instrument;
use market_data::{BookSnapshot, Candle, Interval, Quote, Trade};
use std::collections::HashMap;

fn symbol(st: &AppState, q: &HashMap<String, String>) -> ApiResult<String> {
    let s = q.get("symbol").map(|s| s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty());
    let s = s.ok_or_else(|| ApiError::invalid("symbol", "symbol is required"))?;
    if st.market_data.instruments().get(&s).is_none() {
        return Err(ApiError::invalid("symbol", format!("unknown symbol {s:?}")));
    }
    Ok(s)
}

fn bounded(q: &HashMap<String, String>, key: &str, default: usize, max: usize) -> ApiResult<usize> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(key, format!("{key} must be an integer from 1 to {max}"))),
        },
    }
}

#[utoipa::path(get, path = "/api/v1/market/instruments", tag = "market", summary = "Tradable instruments (tick, lot, multiplier)", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = List<Instrument>), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn instruments(State(st): State<AppState>, principal: Principal) -> ApiResult<Json<List<Instrument>>> {
    principal.require(Role::Viewer)?;
    let data: Vec<Instrument> = st.market_data.instruments().iter().cloned().collect();
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(get, path = "/api/v1/market/trades", tag = "market", summary = "Latest trades, newest first", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("symbol" = String, Query, description = "Symbol"), ("limit" = String, Query, description = "1..10000, default 100")), responses((status = 200, body = List<Trade>), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// The most recent trades, newest first.
pub async fn trades(State(st): State<AppState>, principal: Principal, q: QueryMap) -> ApiResult<Json<List<Trade>>> {
    principal.require(Role::Viewer)?;
    let q = query(q)?;
    let s = symbol(&st, &q)?;
    let limit = bounded(&q, "limit", 100, 10_000)?;
    let data = st.market_data.read(|p| p.last_trades(&s, limit));
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(get, path = "/api/v1/market/quote", tag = "market", summary = "Best bid and ask", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("symbol" = String, Query, description = "Symbol")), responses((status = 200, body = Quote), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn quote(State(st): State<AppState>, principal: Principal, q: QueryMap) -> ApiResult<Json<Quote>> {
    principal.require(Role::Viewer)?;
    let q = query(q)?;
    let s = symbol(&st, &q)?;
    st.market_data.read(|p| p.quote(&s)).map(Json).ok_or_else(|| ApiError::not_found(format!("no quote for {s} yet")))
}

#[utoipa::path(get, path = "/api/v1/market/book", tag = "market", summary = "The L2 book, best first", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("symbol" = String, Query, description = "Symbol"), ("depth" = String, Query, description = "1..100, default 10")), responses((status = 200, body = BookSnapshot), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// `bids` and `asks`, best first, `depth` levels each (default 10).
pub async fn book(State(st): State<AppState>, principal: Principal, q: QueryMap) -> ApiResult<Json<BookSnapshot>> {
    principal.require(Role::Viewer)?;
    let q = query(q)?;
    let s = symbol(&st, &q)?;
    let depth = bounded(&q, "depth", 10, 100)?;
    st.market_data
        .read(|p| p.book(&s, depth))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no book for {s} yet")))
}

#[utoipa::path(get, path = "/api/v1/market/candles", tag = "market", summary = "Candles from the trades", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(("symbol" = String, Query, description = "Symbol"), ("interval" = Option<String>, Query, description = "1m, 5m, 15m, 1h or 1d"), ("from" = Option<String>, Query, description = "RFC 3339 time"), ("to" = Option<String>, Query, description = "RFC 3339 time"), ("limit" = String, Query, description = "1..5000, default 500")), responses((status = 200, body = List<Candle>), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn candles(State(st): State<AppState>, principal: Principal, q: QueryMap) -> ApiResult<Json<List<Candle>>> {
    principal.require(Role::Viewer)?;
    let q = query(q)?;
    let s = symbol(&st, &q)?;
    let interval = match q.get("interval") {
        None => Interval::M1,
        Some(v) => Interval::parse(v)
            .ok_or_else(|| ApiError::invalid("interval", "interval must be one of 1m, 5m, 15m, 1h, 1d"))?,
    };
    let (from, to) = (parse_time(&q, "from")?, parse_time(&q, "to")?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::invalid("from", "from must not be after to"));
        }
    }
    let limit = bounded(&q, "limit", 500, 5_000)?;
    let data = st.market_data.read(|p| p.candles(&s, interval, from, to, limit));
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(get, path = "/api/v1/market/status", tag = "market", summary = "Feed connection state, transitions, gaps and rates", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = FeedStatus), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn status(State(st): State<AppState>, principal: Principal) -> ApiResult<Json<FeedStatus>> {
    principal.require(Role::Viewer)?;
    Ok(Json(st.market_data.status()))
}
