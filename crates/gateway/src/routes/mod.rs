pub mod audit;
pub mod auth;
pub mod docs;
pub mod ideas;
pub mod market;
pub mod ops;
pub mod orders;
pub mod risk;
pub mod signals;
pub mod systems;
pub mod tp_capital;
pub mod ws;

use crate::error::{ApiError, ApiResult};
use std::collections::HashMap;

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// Parses `limit`/`offset` from a query string map; 422 naming the parameter when invalid.
pub fn pagination(q: &HashMap<String, String>) -> ApiResult<(usize, usize)> {
    pagination_up_to(q, MAX_LIMIT)
}

/// [`pagination`] with another ceiling for `limit` (exports go further than pages).
pub fn pagination_up_to(q: &HashMap<String, String>, max: usize) -> ApiResult<(usize, usize)> {
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => return Err(ApiError::invalid("limit", format!("limit must be an integer from 1 to {max}"))),
        },
    };
    let offset = match q.get("offset") {
        None => 0,
        Some(v) => {
            v.parse::<usize>().map_err(|_| ApiError::invalid("offset", "offset must be a non-negative integer"))?
        }
    };
    Ok((limit, offset))
}

pub fn parse_time(q: &HashMap<String, String>, key: &str) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    q.get(key)
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&chrono::Utc)).map_err(|_| {
                ApiError::invalid(key, format!("{key} must be an RFC 3339 time, e.g. 2025-11-24T13:00:00Z"))
            })
        })
        .transpose()
}

/// Query strings: a malformed one is a 400, not axum's plain-text rejection.
pub type QueryMap = Result<axum::extract::Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

pub fn query(q: QueryMap) -> ApiResult<HashMap<String, String>> {
    q.map(|axum::extract::Query(m)| m).map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
}
