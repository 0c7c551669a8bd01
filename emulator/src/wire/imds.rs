//! IMDS's error shape, which Azure Arc's agent shares: `{"error", "error_description"}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

use super::HostError;

/// An IMDS (or Azure Arc) error.
#[derive(Debug, Clone, Serialize)]
pub struct ImdsError {
    #[serde(skip)]
    status: StatusCode,
    #[serde(skip)]
    challenge: Option<String>,
    error: String,
    error_description: String,
}

/// Azure Arc's agent answers in IMDS's shape, plus a `WWW-Authenticate` challenge.
pub type ArcError = ImdsError;

impl ImdsError {
    /// `status` with the OAuth-style `error` code and its description.
    pub fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            challenge: None,
            error: error.to_string(),
            error_description: description.into(),
        }
    }

    /// IMDS's answer to a request without `Metadata: true`.
    pub fn missing_metadata_header() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        )
    }

    /// Adds Azure Arc's `WWW-Authenticate: Basic realm=<challenge file>`.
    pub fn with_challenge(mut self, challenge_file: &str) -> Self {
        self.challenge = Some(format!("Basic realm={challenge_file}"));
        self
    }
}

impl IntoResponse for ImdsError {
    fn into_response(self) -> Response {
        let challenge = self.challenge.clone();
        let mut response = (self.status, Json(self)).into_response();
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert("www-authenticate", value);
        }
        response
    }
}

impl HostError for ImdsError {
    fn for_status(status: StatusCode, detail: Option<&str>, _now: OffsetDateTime) -> Self {
        if let Some(detail) = detail {
            return Self::new(status, "invalid_request", detail);
        }
        let (error, description) = match status.as_u16() {
            429 => (
                "too_many_requests",
                "Too many requests; the managed identity endpoint is throttling. Retry later.",
            ),
            502 | 504 => (
                "gateway_error",
                "The request failed due to a gateway error.",
            ),
            s if s >= 500 => (
                "unknown",
                "Failed to retrieve token from the Active directory.",
            ),
            404 => ("not_found", "The endpoint is being updated; retry later."),
            410 => (
                "gone",
                "The instance is being updated. The Instance Metadata Service will be available within 70 seconds.",
            ),
            _ => (
                "invalid_request",
                "The request was rejected (injected fault).",
            ),
        };
        Self::new(status, error, description)
    }
}
