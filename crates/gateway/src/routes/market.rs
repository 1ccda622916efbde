//! Data Capture endpoints: instruments, the tape, quotes, the book, candles and the feed's status.

use crate::auth::{AsViewer, Authorized};
use crate::error::ErrorBody;
use crate::error::{ApiError, ApiResult};
use crate::query::{Limit, Time, Q};
use crate::views::List;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use data_capture::FeedStatus;
use domain::Instrument;
use market_data::{BookSnapshot, Candle, Interval, Quote, Trade};
use serde::Deserialize;

fn symbol(st: &AppState, symbol: &Option<String>) -> ApiResult<String> {
    let s = crate::query::text(symbol).map(|s| s.to_ascii_uppercase());
    let s = s.ok_or_else(|| ApiError::invalid("symbol", "symbol is required"))?;
    if st.market_data.instruments().get(&s).is_none() {
        return Err(ApiError::invalid("symbol", format!("unknown symbol {s:?}")));
    }
    Ok(s)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SymbolQuery {
    /// The instrument, e.g. PETR4.
    symbol: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TradesQuery {
    /// The instrument, e.g. PETR4.
    symbol: Option<String>,
    /// 1..10000, default 100.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit<100, 10_000>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BookQuery {
    /// The instrument, e.g. PETR4.
    symbol: Option<String>,
    /// Levels per side: 1..100, default 10.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    depth: Limit<10, 100>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandlesQuery {
    /// The instrument, e.g. PETR4.
    symbol: Option<String>,
    /// 1m (default), 5m, 15m, 1h or 1d.
    interval: Option<String>,
    /// RFC 3339.
    #[param(value_type = Option<String>)]
    from: Option<Time>,
    /// RFC 3339.
    #[param(value_type = Option<String>)]
    to: Option<Time>,
    /// 1..5000, default 500.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    limit: Limit<500, 5_000>,
}

#[utoipa::path(get, path = "/api/v1/market/instruments", tag = "market", summary = "Tradable instruments (tick, lot, multiplier)", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = List<Instrument>), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn instruments(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<List<Instrument>>> {
    let data: Vec<Instrument> = st.market_data.instruments().iter().cloned().collect();
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(get, path = "/api/v1/market/trades", tag = "market", summary = "Latest trades, newest first", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(TradesQuery), responses((status = 200, body = List<Trade>), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// The most recent trades, newest first.
pub async fn trades(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<TradesQuery>,
) -> ApiResult<Json<List<Trade>>> {
    let s = symbol(&st, &q.symbol)?;
    let limit = q.limit.0;
    let data = st.market_data.read(|p| p.last_trades(&s, limit));
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(get, path = "/api/v1/market/quote", tag = "market", summary = "Best bid and ask", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(SymbolQuery), responses((status = 200, body = Quote), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn quote(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<SymbolQuery>,
) -> ApiResult<Json<Quote>> {
    let s = symbol(&st, &q.symbol)?;
    st.market_data.read(|p| p.quote(&s)).map(Json).ok_or_else(|| ApiError::not_found(format!("no quote for {s} yet")))
}

#[utoipa::path(get, path = "/api/v1/market/book", tag = "market", summary = "The L2 book, best first", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(BookQuery), responses((status = 200, body = BookSnapshot), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
/// `bids` and `asks`, best first, `depth` levels each (default 10).
pub async fn book(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<BookQuery>,
) -> ApiResult<Json<BookSnapshot>> {
    let s = symbol(&st, &q.symbol)?;
    let depth = q.depth.0;
    st.market_data
        .read(|p| p.book(&s, depth))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no book for {s} yet")))
}

#[utoipa::path(get, path = "/api/v1/market/candles", tag = "market", summary = "Candles from the trades", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), params(CandlesQuery), responses((status = 200, body = List<Candle>), (status = 422, body = ErrorBody), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn candles(
    State(st): State<AppState>,
    Authorized(_): AsViewer,
    Q(q): Q<CandlesQuery>,
) -> ApiResult<Json<List<Candle>>> {
    let s = symbol(&st, &q.symbol)?;
    let interval = match q.interval.as_deref() {
        None => Interval::M1,
        Some(v) => Interval::parse(v)
            .ok_or_else(|| ApiError::invalid("interval", "interval must be one of 1m, 5m, 15m, 1h, 1d"))?,
    };
    let (from, to) = (q.from.map(|t| t.0), q.to.map(|t| t.0));
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::invalid("from", "from must not be after to"));
        }
    }
    let limit = q.limit.0;
    let data = st.market_data.read(|p| p.candles(&s, interval, from, to, limit));
    Ok(Json(List { total: data.len() as u64, data }))
}

#[utoipa::path(get, path = "/api/v1/market/status", tag = "market", summary = "Feed connection state, transitions, gaps and rates", security(("bearer" = ["viewer"]), ("api_key" = ["viewer"])), responses((status = 200, body = FeedStatus), (status = 401, description = "No or invalid credentials", body = ErrorBody), (status = 403, description = "The role may not do this", body = ErrorBody), (status = 429, description = "Rate limited (see Retry-After)", body = ErrorBody)))]
pub async fn status(State(st): State<AppState>, Authorized(_): AsViewer) -> ApiResult<Json<FeedStatus>> {
    Ok(Json(st.market_data.status()))
}
