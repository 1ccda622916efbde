//! JSON request bodies: 400 for anything that is not a JSON object, 422 naming the field for the rest.

use crate::error::{ApiError, ApiResult};
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Like `axum::Json`, but with this API's error contract.
pub struct JsonBody<T>(pub T, pub Value);

fn field_from_message(msg: &str) -> Option<String> {
    // serde names missing and unknown fields in backticks: "missing field `symbol`", "unknown field `qty`, ...".
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(msg[start..start + len].to_string())
}

pub fn parse_value<T: DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_path_to_error::deserialize::<_, T>(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let field = if path == "." || path.is_empty() {
            field_from_message(&inner).unwrap_or_else(|| "body".into())
        } else {
            path
        };
        ApiError::invalid(&field, format!("{field}: {inner}"))
    })
}

pub fn parse_bytes(bytes: &[u8]) -> ApiResult<Value> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    Ok(value)
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
        let parsed = parse_value(value.clone())?;
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

    #[test]
    fn malformed_is_400() {
        assert_eq!(parse_bytes(b"{").unwrap_err().status, 400);
        assert_eq!(parse_bytes(b"[1]").unwrap_err().status, 400);
        assert!(parse_bytes(b"{}").is_ok());
    }
}
