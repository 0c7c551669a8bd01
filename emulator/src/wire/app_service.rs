//! App Service's error shape (`{"statusCode", "message", "correlationId"}`), which Azure ML's
//! compute identity endpoint shares: it speaks App Service's 2017-09-01 protocol.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

use super::{HostError, correlation_id};

/// An App Service (or Azure ML) managed-identity error.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppServiceError {
    #[serde(skip)]
    status: StatusCode,
    status_code: String,
    message: String,
    correlation_id: String,
}

/// Azure ML answers in App Service's shape.
pub type AzureMlError = AppServiceError;

impl AppServiceError {
    /// `status` with `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            status_code: status.as_u16().to_string(),
            message: message.into(),
            correlation_id: correlation_id(),
        }
    }
}

impl IntoResponse for AppServiceError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

impl HostError for AppServiceError {
    fn for_status(status: StatusCode, detail: Option<&str>, _now: OffsetDateTime) -> Self {
        let message = detail.unwrap_or(match status.as_u16() {
            429 => "Too many requests to the managed identity endpoint. Retry later.",
            s if s >= 500 => "An unexpected error occurred while fetching the AAD Token.",
            404 => "The managed identity endpoint is not available; retry later.",
            _ => "The request was rejected (injected fault).",
        });
        Self::new(status, message)
    }
}
