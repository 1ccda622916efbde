//! Typed query strings. A handler takes `Q<T>` where `T` is a `Deserialize` struct of its parameters (with
//! `IntoParams`, so the OpenAPI document lists the same fields): a value that does not fit its field is a 422
//! naming the parameter in `details.field`, a query string that is not `key=value&...` a 400. Unknown parameters
//! are ignored, as browsers and proxies add their own.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::de::{DeserializeOwned, Deserializer, Error as _, Visitor};
use serde::Deserialize;
use std::fmt;

pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.as_bytes()));
        serde_path_to_error::deserialize(de).map(Q).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner().to_string();
            if field.is_empty() || field == "." {
                ApiError::bad_request(format!("malformed query string: {inner}"))
            } else {
                ApiError::invalid(&field, format!("{field}: {inner}"))
            }
        })
    }
}

/// A typed path parameter: one that does not parse is a 422 naming it (axum's own rejection is plain text).
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::{ErrorKind, Path};
        use axum::extract::rejection::PathRejection;
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(P(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                // A single value (`P<u64>`) fails without a key: name the route's only parameter.
                let only = match axum::extract::RawPathParams::from_request_parts(parts, state).await {
                    Ok(raw) if raw.iter().count() == 1 => raw.iter().next().map(|(k, _)| k.to_string()),
                    _ => None,
                };
                let field = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    _ => only.unwrap_or_else(|| "path".to_string()),
                };
                let expected = match e.kind() {
                    ErrorKind::ParseErrorAtKey { expected_type, .. } | ErrorKind::ParseError { expected_type, .. } => {
                        format!("expected {}", expected_type.rsplit("::").next().unwrap_or(expected_type))
                    }
                    _ => "cannot be read".to_string(),
                };
                Err(ApiError::invalid(&field, format!("{field}: {expected}")))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Accepts a number as text or as a number (flattened structs see query values as text).
struct Number;

impl Visitor<'_> for Number {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a non-negative integer")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom("expected a non-negative integer"))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
        v.trim().parse().map_err(|_| E::custom(format!("expected a non-negative integer, got {:?}", truncate(v))))
    }
}

fn truncate(v: &str) -> String {
    v.chars().take(32).collect()
}

/// A page size: `DEFAULT` when absent, refused outside `1..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit<const DEFAULT: usize, const MAX: usize>(pub usize);

impl<const DEFAULT: usize, const MAX: usize> Default for Limit<DEFAULT, MAX> {
    fn default() -> Self {
        Limit(DEFAULT)
    }
}

impl<'de, const DEFAULT: usize, const MAX: usize> Deserialize<'de> for Limit<DEFAULT, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(Number)?;
        match usize::try_from(n) {
            Ok(n) if (1..=MAX).contains(&n) => Ok(Limit(n)),
            _ => Err(D::Error::custom(format!("must be an integer from 1 to {MAX}"))),
        }
    }
}

/// How many items to skip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offset(pub usize);

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = d.deserialize_any(Number)?;
        usize::try_from(n).map(Offset).map_err(|_| D::Error::custom("too large"))
    }
}

/// An RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(s.trim()).map(|t| Time(t.with_timezone(&Utc))).map_err(|_| {
            D::Error::custom(format!("must be an RFC 3339 time, e.g. 2025-11-24T13:00:00Z, not {:?}", truncate(&s)))
        })
    }
}

/// `limit` (1..1000, default 100) and `offset` (default 0): the paging every list takes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// 1..1000, default 100.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    pub limit: Limit<100, 1000>,
    /// Default 0.
    #[serde(default)]
    #[param(value_type = Option<usize>)]
    pub offset: Offset,
}

/// Text that counts only when not blank, trimmed.
pub fn text(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

/// A filter naming one of a closed set: absent or blank is no filter, a value outside the set is a 422 naming the
/// field and the values it takes.
pub fn one_of<T>(
    field: &str,
    v: &Option<String>,
    parse: impl Fn(&str) -> Option<T>,
    choices: impl FnOnce() -> String,
) -> Result<Option<T>, ApiError> {
    match text(v) {
        None => Ok(None),
        Some(t) => {
            parse(&t).map(Some).ok_or_else(|| ApiError::invalid(field, format!("{field}: one of {}", choices())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Params {
        #[serde(default)]
        limit: Limit<100, 1000>,
        #[serde(default)]
        offset: Offset,
        from: Option<Time>,
        symbol: Option<String>,
    }

    async fn parse(uri: &str) -> Result<Params, ApiError> {
        let (mut parts, _) = Request::get(uri).body(()).unwrap().into_parts();
        Q::<Params>::from_request_parts(&mut parts, &()).await.map(|q| q.0)
    }

    fn field(e: &ApiError) -> String {
        e.details.as_ref().and_then(|d| d["field"].as_str()).unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn values_that_do_not_fit_name_their_parameter() {
        let p = parse("/x").await.unwrap();
        assert_eq!((p.limit, p.offset, p.from), (Limit(100), Offset(0), None));
        let p = parse("/x?limit=7&offset=3&from=2025-11-24T13:00:00Z&symbol=%20petr4&other=1").await.unwrap();
        assert_eq!((p.limit.0, p.offset.0, p.symbol.as_deref()), (7, 3, Some(" petr4")));
        for (uri, name) in [
            ("/x?limit=abc", "limit"),
            ("/x?limit=0", "limit"),
            ("/x?limit=1001", "limit"),
            ("/x?offset=-1", "offset"),
            ("/x?from=soon", "from"),
        ] {
            let e = parse(uri).await.unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY, "{uri}");
            assert_eq!(field(&e), name, "{uri}");
        }
    }

    #[tokio::test]
    async fn a_path_parameter_that_does_not_parse_is_named() {
        use axum::body::Body;
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route("/orders/{id}", axum::routing::get(|P(id): P<u64>| async move { id.to_string() }));
        let ok = app.clone().oneshot(Request::get("/orders/42").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(ok.status(), axum::http::StatusCode::OK);
        let bad = app.oneshot(Request::get("/orders/abc").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(bad.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        let body = axum::body::to_bytes(bad.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["details"]["field"], "id", "{v}");
    }
}
