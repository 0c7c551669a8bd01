//! Service Fabric's error shape: `{"error": {"correlationId", "code", "message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

use super::{HostError, coded_status, correlation_id};

/// A Service Fabric managed-identity error.
#[derive(Debug, Clone)]
pub struct ServiceFabricError {
    status: StatusCode,
    code: String,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inner<'a> {
    correlation_id: String,
    code: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

impl ServiceFabricError {
    /// `status` with Service Fabric's error `code` (`SecretHeaderNotFound`, …) and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ServiceFabricError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                correlation_id: correlation_id(),
                code: &self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl HostError for ServiceFabricError {
    fn for_status(status: StatusCode, detail: Option<&str>, _now: OffsetDateTime) -> Self {
        if let Some(detail) = detail {
            return Self::new(status, "BadRequest", detail);
        }
        let (code, message) = coded_status(status, "The managed identity endpoint");
        Self::new(status, code, message)
    }
}
