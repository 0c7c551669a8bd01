//! The token endpoint's success body: v1's all-strings shape and v2's.

use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A successful token response.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum TokenResponse {
    /// `/oauth2/token` (v1): every value a string, with `resource`.
    V1(V1Token),
    /// `/oauth2/v2.0/token`, and every user grant.
    V2(V2Token),
}

/// The v1 endpoint's body.
#[derive(Debug, Serialize)]
pub(crate) struct V1Token {
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: String,
    pub(crate) ext_expires_in: String,
    pub(crate) expires_on: String,
    pub(crate) not_before: String,
    pub(crate) resource: String,
    pub(crate) access_token: String,
}

/// The v2 endpoint's body.
#[derive(Debug, Serialize)]
pub(crate) struct V2Token {
    pub(crate) token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scope: Option<String>,
    pub(crate) expires_in: i64,
    pub(crate) ext_expires_in: i64,
    /// Entra tells clients to refresh long-lived tokens at half their lifetime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_in: Option<i64>,
    pub(crate) access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
    /// An OpenID Connect ID token, when `openid` was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id_token: Option<String>,
    /// MSAL's `client_info`, when `client_info=1` was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_info: Option<String>,
}

impl IntoResponse for TokenResponse {
    fn into_response(self) -> Response {
        let mut response = Json(self).into_response();
        let h = response.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        response
    }
}
