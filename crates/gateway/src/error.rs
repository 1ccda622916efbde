//! The one error shape of the API: `{"error": {"code", "message", "details"}, "correlation_id"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use order_manager::OmsError;
use serde_json::{json, Value};

tokio::task_local! {
    /// The correlation id of the request being served; set by the request middleware.
    pub static CORRELATION_ID: String;
}

pub fn correlation_id() -> Option<String> {
    CORRELATION_ID.try_with(|c| c.clone()).ok()
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status, code: code.into(), message: message.into(), details: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", message)
    }

    /// 422 naming the offending field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR", message).with_details(json!({ "field": field }))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(d) = self.details {
            error["details"] = d;
        }
        let body = json!({ "error": error, "correlation_id": correlation_id() });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<OmsError> for ApiError {
    fn from(e: OmsError) -> Self {
        match e {
            OmsError::Invalid(v) => ApiError::invalid(v.field, v.to_string()),
            OmsError::Risk { order, rejection } => {
                ApiError::new(StatusCode::FORBIDDEN, rejection.code(), rejection.message.clone())
                    .with_details(json!({ "check": rejection.check, "order": crate::views::OrderView::from(*order) }))
            }
            OmsError::NotFound(id) => ApiError::not_found(format!("order {id} not found")),
            OmsError::Conflict(m) => ApiError::conflict(m),
            OmsError::ReusedClientOrderId { client_order_id, field, original } => {
                let message = format!(
                    "client_order_id {client_order_id:?} was already used for order {} with a different {field}; \
                     send a new client_order_id for a new order",
                    original.id
                );
                ApiError::conflict(message).with_details(json!({
                    "field": "client_order_id",
                    "differs": field,
                    "order": crate::views::OrderView::from(*original),
                }))
            }
            OmsError::Unavailable(m) => ApiError::unavailable(m),
        }
    }
}

impl From<storage::StoreError> for ApiError {
    fn from(e: storage::StoreError) -> Self {
        match e {
            storage::StoreError::Conflict(m) => ApiError::conflict(format!("{m} already exists")),
            storage::StoreError::NotFound(m) => ApiError::not_found(format!("{m} not found")),
            // The database refused a value the request carried: the request's fault, not an outage.
            other if other.is_bad_input() => {
                tracing::warn!(error = %other, "the database refused a value from a request");
                ApiError::invalid("body", "a value in the request cannot be stored (unsupported characters or size)")
            }
            other => {
                tracing::error!(error = %other, "database error");
                ApiError::unavailable("the database is unavailable")
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The shape of every error response, for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// The request's correlation id (also in the `X-Correlation-Id` header and every log line of the request).
    pub correlation_id: Option<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable code: MALFORMED_REQUEST, UNAUTHORIZED, FORBIDDEN, a risk check's code, NOT_FOUND, CONFLICT,
    /// PAYLOAD_TOO_LARGE, VALIDATION_ERROR, RATE_LIMITED, SERVICE_UNAVAILABLE, TIMEOUT, ...
    pub code: String,
    pub message: String,
    /// For VALIDATION_ERROR `{"field": ...}`; for a risk rejection the check and the rejected order.
    pub details: Option<serde_json::Value>,
}
