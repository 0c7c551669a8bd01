//! The per-request context every handler shares, built once: the request's origin, the
//! emulator's time, the client's correlation id, and the body, buffered by the observing
//! middleware and parsed as a form at most once.

use std::sync::{Arc, OnceLock};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use time::OffsetDateTime;

use crate::form::{self, FormError};
use crate::routes::Origin;
use crate::state::Shared;
use crate::wire::{Aadsts, EntraError};

/// A request body the observing middleware buffered (under the size limit).
#[derive(Debug)]
pub(crate) struct Buffered {
    bytes: Bytes,
    form: OnceLock<Result<Vec<(String, String)>, FormError>>,
}

impl Buffered {
    pub(crate) fn new(bytes: Bytes) -> Self {
        Self {
            bytes,
            form: OnceLock::new(),
        }
    }

    /// The body as a form, parsed on first use.
    pub(crate) fn form(&self) -> Result<&[(String, String)], &FormError> {
        self.form
            .get_or_init(|| form::parse(&self.bytes))
            .as_deref()
    }
}

/// What every handler needs to know about its request.
#[derive(Debug)]
pub(crate) struct RequestContext {
    /// `scheme://host[:port]` as the client addressed the emulator.
    pub(crate) origin: String,
    /// The emulator's time for this request (clock offset and injected skew applied).
    pub(crate) now: OffsetDateTime,
    /// The client's `client-request-id`, echoed in errors.
    pub(crate) correlation_id: Option<String>,
    /// The request's headers.
    pub(crate) headers: HeaderMap,
    body: Arc<Buffered>,
}

impl RequestContext {
    /// The body, buffered.
    pub(crate) fn body(&self) -> &Buffered {
        &self.body
    }

    /// The body as an `application/x-www-form-urlencoded` form, or Entra's error for it.
    pub(crate) fn entra_form(&self) -> Result<&[(String, String)], EntraError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(Aadsts::Malformed {
                detail: "the body must be application/x-www-form-urlencoded".to_string(),
            }
            .into());
        }
        self.body.form().map_err(|e| {
            Aadsts::Malformed {
                detail: e.to_string(),
            }
            .into()
        })
    }

    /// Stamps an Entra error with this request's time and correlation id.
    pub(crate) fn entra_error(&self, error: impl Into<EntraError>) -> EntraError {
        error
            .into()
            .at(self.now)
            .with_correlation_id(self.correlation_id.clone())
    }
}

/// The client's request id: the `client-request-id` / `x-ms-client-request-id` header, or the
/// `client-request-id` query parameter msal-node appends.
pub(crate) fn client_request_id(parts: &Parts) -> Option<String> {
    ["client-request-id", "x-ms-client-request-id"]
        .iter()
        .find_map(|name| parts.headers.get(*name)?.to_str().ok().map(str::to_string))
        .or_else(|| {
            let pairs = form::parse(parts.uri.query()?.as_bytes()).ok()?;
            form::get(&pairs, "client-request-id").map(str::to_string)
        })
}

impl FromRequestParts<Arc<Shared>> for RequestContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        let origin = parts
            .extensions
            .get::<Origin>()
            .copied()
            .unwrap_or_default();
        let body = parts
            .extensions
            .get::<Arc<Buffered>>()
            .cloned()
            .unwrap_or_else(|| Arc::new(Buffered::new(Bytes::new())));
        Ok(Self {
            origin: origin.of(&parts.headers, &parts.uri),
            now: shared.now(),
            correlation_id: client_request_id(parts),
            headers: parts.headers.clone(),
            body,
        })
    }
}
