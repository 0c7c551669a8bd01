//! Key Vault's error shape: `{"error": {"code", "message", "innererror": {"code"}}}`; a 401
//! also carries the `WWW-Authenticate` challenge that tells the client where to get a token.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;

use super::{HostError, coded_status};

/// A Key Vault data-plane error.
#[derive(Debug, Clone)]
pub struct KeyVaultError {
    status: StatusCode,
    code: String,
    message: String,
    inner: Option<String>,
    challenge: Option<String>,
}

impl KeyVaultError {
    /// `status` with `code` (`SecretNotFound`, `BadParameter`, …) and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            inner: None,
            challenge: None,
        }
    }

    /// With an `innererror` code (`ForbiddenByRbac`).
    pub fn with_inner(mut self, code: &str) -> Self {
        self.inner = Some(code.to_string());
        self
    }

    /// With a `WWW-Authenticate` challenge.
    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for KeyVaultError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(inner) = self.inner {
            error["innererror"] = json!({ "code": inner });
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

impl HostError for KeyVaultError {
    fn for_status(status: StatusCode, detail: Option<&str>, _now: OffsetDateTime) -> Self {
        if let Some(detail) = detail {
            return Self::new(status, "BadParameter", detail);
        }
        let (code, message) = coded_status(status, "Key Vault");
        let code = match status.as_u16() {
            401 => "Unauthorized",
            403 => "Forbidden",
            409 => "Conflict",
            _ => code,
        };
        Self::new(status, code, message)
    }
}
