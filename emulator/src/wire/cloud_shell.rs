//! Cloud Shell's error shape: `{"error": {"code", "message"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;

use super::{HostError, coded_status};

/// A Cloud Shell token-endpoint error.
#[derive(Debug, Clone)]
pub struct CloudShellError {
    status: StatusCode,
    code: String,
    message: String,
}

impl CloudShellError {
    /// `status` with `code` (`BadRequest`, …) and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl IntoResponse for CloudShellError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl HostError for CloudShellError {
    fn for_status(status: StatusCode, detail: Option<&str>, _now: OffsetDateTime) -> Self {
        if let Some(detail) = detail {
            return Self::new(status, "BadRequest", detail);
        }
        let (code, message) = coded_status(status, "The Cloud Shell token service");
        Self::new(status, code, message)
    }
}
