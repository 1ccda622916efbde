//! JSON request bodies: 400 for anything that is not a JSON object, 422 naming the field for the rest.

use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequest, Request};
use domain::price::DecimalError;
use domain::{Money, Price};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// Like `axum::Json`, but with this API's error contract.
pub struct JsonBody<T>(pub T, pub Value);

fn field_from_message(msg: &str) -> Option<String> {
    // serde names missing and unknown fields in backticks: "missing field `symbol`", "unknown field `qty`, ...".
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

/// Turns a serde error (with its path) into a 422 naming the field.
fn invalid_field(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    // serde_json appends "at line 1 column 42"; the field name says more to a client than a column.
    let msg = match inner.line() {
        0 => inner.to_string(),
        _ => {
            let s = inner.to_string();
            s.rsplit_once(" at line ").map_or(s.clone(), |(m, _)| m.to_string())
        }
    };
    let field =
        if path == "." || path.is_empty() { field_from_message(&msg).unwrap_or_else(|| "body".into()) } else { path };
    // serde quotes what it refused; a 500 KB value is not echoed back (nor journaled) whole.
    let (field, msg) = (shorten(&field, 64), shorten(&msg, 200));
    ApiError::invalid(&field, format!("{field}: {msg}"))
}

/// At most `max` characters of `s`, marked when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

pub fn parse_value<T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(invalid_field)
}

/// Deserializes the body's own text (not a [`Value`] made of it), so that [`Exact`] prices see the digits the
/// client sent. Call [`parse_bytes`] first: it answers 400 for anything that is not a JSON object.
pub fn parse_text<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, T>(&mut de).map_err(invalid_field)
}

pub fn parse_bytes(bytes: &[u8]) -> ApiResult<Value> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if let Some(path) = control_character_at(&value, &mut String::new()) {
        let field = if path.is_empty() { "body".to_string() } else { shorten(&path, 64) };
        return Err(ApiError::invalid(
            &field,
            format!("{field}: control characters (such as NUL) are not accepted; tab, CR and LF are"),
        ));
    }
    Ok(value)
}

/// A character no text field of this API means: C0 controls other than tab, LF and CR. NUL in particular cannot
/// be stored by PostgreSQL, and whether a backend accepts it must not decide what the API accepts.
pub fn is_forbidden_control(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}'
}

/// The path (`a.b[2]`) of the first string or key holding a forbidden control character.
fn control_character_at(v: &Value, path: &mut String) -> Option<String> {
    let bad = |s: &str| s.chars().any(is_forbidden_control);
    match v {
        Value::String(s) if bad(s) => Some(path.clone()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = control_character_at(item, path);
            path.truncate(len);
            found
        }),
        Value::Object(o) => o.iter().find_map(|(k, item)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let found = if bad(k) { Some(path.clone()) } else { control_character_at(item, path) };
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

/// Whether a percent-encoded path or query decodes to a forbidden control character (`%00`, `%07`, ...).
fn encodes_control(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .is_some_and(|byte| is_forbidden_control(char::from(byte)))
    })
}

/// Refuses, before any handler runs, what no handler of the API accepts: control characters encoded in the path
/// or the query (422), and a body that is not declared as JSON (415). Every API body is JSON.
pub async fn guard(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    if encodes_control(uri.path()) {
        return ApiError::invalid("path", "path: control characters (such as %00) are not accepted").into_response();
    }
    if uri.query().is_some_and(encodes_control) {
        return ApiError::invalid("query", "query: control characters (such as %00) are not accepted").into_response();
    }
    let headers = req.headers();
    let has_body = headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0);
    let json = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_json_content_type);
    if has_body && !json && uri.path().starts_with("/api/") {
        return ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be JSON, sent with Content-Type: application/json",
        )
        .into_response();
    }
    next.run(req).await
}

/// Whether a `Content-Type` names JSON (`application/json`, `application/problem+json`, with any parameters).
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A price or an amount exactly as the client wrote it: the JSON number's own digits (or a decimal string),
/// never a binary float in between. `37.34001` is refused, not rounded to 37.34, whatever its magnitude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exact<T>(pub T);

pub trait Decimal: Sized {
    fn parse_decimal(text: &str) -> Result<Self, DecimalError>;
}

impl Decimal for Price {
    fn parse_decimal(text: &str) -> Result<Self, DecimalError> {
        Price::parse_decimal(text)
    }
}

impl Decimal for Money {
    fn parse_decimal(text: &str) -> Result<Self, DecimalError> {
        Money::parse_decimal(text)
    }
}

impl<'de, T: Decimal> Deserialize<'de> for Exact<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        let text = raw.get();
        let number = if text.starts_with('"') {
            serde_json::from_str::<String>(text).map_err(serde::de::Error::custom)?
        } else if text.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
            text.to_string()
        } else {
            return Err(serde::de::Error::custom(format!(
                "expected a decimal number, found {}",
                text.chars().take(40).collect::<String>()
            )));
        };
        let shown: String = number.chars().take(40).collect();
        T::parse_decimal(&number).map(Exact).map_err(|e| serde::de::Error::custom(format!("{shown} {e}")))
    }
}

/// `Option<Exact<T>>` → `Option<T>`.
pub fn exact<T>(v: Option<Exact<T>>) -> Option<T> {
    v.map(|Exact(x)| x)
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(e.status(), "PAYLOAD_TOO_LARGE", "the request body is too large")
            } else {
                ApiError::bad_request(format!("could not read the body: {e}"))
            }
        })?;
        let value = parse_bytes(&bytes)?;
        let parsed = parse_text(&bytes)?;
        Ok(JsonBody(parsed, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct B {
        name: String,
        n: i64,
    }

    fn field(v: &str) -> String {
        let e = parse_value::<B>(serde_json::from_str(v).unwrap()).unwrap_err();
        e.details.unwrap()["field"].as_str().unwrap().to_string()
    }

    #[test]
    fn names_the_field() {
        assert_eq!(field(r#"{"n": 1}"#), "name");
        assert_eq!(field(r#"{"name": "x", "n": 1.5}"#), "n");
        assert_eq!(field(r#"{"name": 3, "n": 1}"#), "name");
        assert_eq!(field(r#"{"name": "x", "n": 1, "extra": 1}"#), "extra");
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct P {
        price: Option<Exact<Price>>,
    }

    fn price(body: &str) -> Result<Option<Price>, String> {
        parse_text::<P>(body.as_bytes())
            .map(|p| exact(p.price))
            .map_err(|e| format!("{}: {}", e.details.unwrap()["field"].as_str().unwrap(), e.message))
    }

    #[test]
    fn prices_come_from_the_text_the_client_sent() {
        assert_eq!(price(r#"{"price": 37.34}"#), Ok(Some(Price(373_400))));
        assert_eq!(price(r#"{"price": "37.34"}"#), Ok(Some(Price(373_400))));
        assert_eq!(price(r#"{"price": 3.734e1}"#), Ok(Some(Price(373_400))));
        assert_eq!(price(r#"{"price": null}"#), Ok(None));
        assert_eq!(price(r#"{}"#), Ok(None));
        for bad in ["37.34001", "37.3400001", "125435.00001", "5432.50001", "2000.00001", "37.3400000000000000001"] {
            let e = price(&format!(r#"{{"price": {bad}}}"#)).unwrap_err();
            assert!(e.starts_with("price: "), "{e}");
            assert!(e.contains("more than 4 decimal places"), "{e}");
        }
        assert!(price(r#"{"price": true}"#).unwrap_err().starts_with("price: "));
        assert!(price(r#"{"price": [1]}"#).unwrap_err().starts_with("price: "));
        assert!(price(r#"{"price": "abc"}"#).unwrap_err().contains("not a decimal"));
    }

    proptest::proptest! {
        /// Through the HTTP body parser, at every magnitude: a fifth decimal anywhere is refused, never rounded.
        #[test]
        fn json_numbers_with_more_than_four_decimals_are_refused(
            int in 0u64..922_337_203_685_477,
            frac in "[0-9]{4}",
            extra in "[0-9]{0,20}[1-9]",
        ) {
            let e = price(&format!(r#"{{"price": {int}.{frac}{extra}}}"#));
            proptest::prop_assert!(e.is_err(), "{:?}", e);
            let ok = price(&format!(r#"{{"price": {int}.{frac}}}"#));
            let units = int as i64 * 10_000 + frac.parse::<i64>().unwrap();
            proptest::prop_assert_eq!(ok, Ok(Some(Price(units))));
        }
    }

    #[test]
    fn control_characters_are_refused_with_their_path() {
        let field = |body: &str| parse_bytes(body.as_bytes()).unwrap_err().details.unwrap()["field"].clone();
        assert_eq!(field(r#"{"username": "a\u0000b"}"#), "username");
        assert_eq!(field(r#"{"tags": ["ok", "x\u0007"]}"#), "tags[1]");
        assert_eq!(field(r#"{"a": {"b\u0000": 1}}"#), "a.b\u{0}");
        assert!(parse_bytes(br#"{"text": "line 1\nline 2\ttab\r"}"#).is_ok());
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("Application/JSON"));
        assert!(is_json_content_type("application/merge-patch+json"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/x-www-form-urlencoded"));
        assert!(encodes_control("/api/v1/ideas/a%00b") && encodes_control("q=%1f") && encodes_control("q=%7F"));
        assert!(!encodes_control("/api/v1/ideas/a%20b") && !encodes_control("q=%zz%") && !encodes_control("100%"));
    }

    #[test]
    fn malformed_is_400() {
        assert_eq!(parse_bytes(b"{").unwrap_err().status, 400);
        assert_eq!(parse_bytes(b"[1]").unwrap_err().status, 400);
        assert!(parse_bytes(b"{}").is_ok());
    }
}
