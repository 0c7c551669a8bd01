//! Applies a selected fault to a request: the responses, delays and broken connections that
//! [`crate::faults::FaultAction`] describes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::context::Buffered;
use crate::faults::{
    DEFAULT_HANG_SECS, DEFAULT_OVERSIZED_BYTES, Endpoint, FaultAction, FaultRequest, Selected,
};
use crate::form;
use crate::state::{REQUEST_SKEW_SECS, Shared};

/// Marks a response the connection layer must not send: it drops the connection instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropConnection;

/// The body Docker Desktop answers IMDS requests with when the address is unreachable.
pub(crate) const DOCKER_UNREACHABLE: &str = "connecting to 169.254.169.254:80: connecting to 169.254.169.254:80: dial tcp 169.254.169.254:80: connectex: A socket operation was attempted to an unreachable network.";

/// The largest body kept when a response is rewritten (truncate, missing fields).
const REWRITE_LIMIT: usize = 16 * 1024 * 1024;

/// Picks the fault for a request to `endpoint`, if one fires. Reads the form the observing
/// middleware buffered, so the body is parsed at most once.
pub(crate) fn select(shared: &Shared, endpoint: Endpoint, request: &Request) -> Option<Selected> {
    let none: &[(String, String)] = &[];
    let form = request
        .extensions()
        .get::<Arc<Buffered>>()
        .and_then(|b| b.form().ok())
        .unwrap_or(none);
    let query = request
        .uri()
        .query()
        .and_then(|q| form::parse(q.as_bytes()).ok())
        .unwrap_or_default();
    let find = |pairs: &[(String, String)], names: &[&str]| {
        names
            .iter()
            .find_map(|n| form::get(pairs, n).map(str::to_string))
    };
    let path = request.uri().path();
    let tenant = endpoint
        .is_entra()
        .then(|| path.trim_start_matches('/').split('/').next())
        .flatten()
        .filter(|t| !t.is_empty());
    let client_id = find(form, &["client_id"]).or_else(|| find(&query, QUERY_CLIENT_IDS));
    let resource = find(form, &["scope", "resource"]).or_else(|| find(&query, &["resource"]));
    shared.faults.select(&FaultRequest {
        endpoint: Some(endpoint),
        tenant,
        client_id: client_id.as_deref(),
        resource: resource.as_deref(),
    })
}

/// The query parameters the managed-identity hosts take an identity's id in.
const QUERY_CLIENT_IDS: &[&str] = &[
    "client_id",
    "clientid",
    "object_id",
    "principal_id",
    "msi_res_id",
    "mi_res_id",
];

/// Serves `request` under `action`.
pub(crate) async fn apply(
    shared: &Shared,
    endpoint: Endpoint,
    origin: &str,
    action: FaultAction,
    request: Request,
    next: Next,
) -> Response {
    match action {
        FaultAction::Status {
            status,
            body,
            headers,
            retry_after,
        } => status_response(shared, endpoint, status, body, &headers, retry_after),
        FaultAction::Gone => status_response(shared, endpoint, 410, None, &BTreeMap::new(), None),
        FaultAction::Unreachable => text(StatusCode::FORBIDDEN, "text/plain", DOCKER_UNREACHABLE),
        FaultAction::Redirect { location } => redirect(origin, location),
        FaultAction::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(request).await
        }
        FaultAction::Hang { secs } => {
            tokio::time::sleep(Duration::from_secs(secs.unwrap_or(DEFAULT_HANG_SECS))).await;
            drop_connection()
        }
        FaultAction::Reset => drop_connection(),
        FaultAction::Truncate { keep_bytes } => truncate(next.run(request).await, keep_bytes).await,
        FaultAction::NotJson => text(StatusCode::OK, "text/html", CAPTIVE_PORTAL),
        FaultAction::MissingFields { fields } => {
            strip_fields(next.run(request).await, &fields).await
        }
        FaultAction::Oversized { bytes } => oversized(bytes.unwrap_or(DEFAULT_OVERSIZED_BYTES)),
        FaultAction::ClockSkew { secs } => REQUEST_SKEW_SECS.scope(secs, next.run(request)).await,
    }
}

/// What a captive portal answers instead of JSON.
const CAPTIVE_PORTAL: &str = "<!DOCTYPE html><html><head><title>Sign in to your network</title></head><body><p>This network requires you to sign in before you can use it.</p></body></html>";

/// `status` with a UTF-8 body of `media_type`.
fn text(status: StatusCode, media_type: &str, body: &'static str) -> Response {
    let content_type = format!("{media_type}; charset=utf-8");
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Azure DevOps' redirect to its sign-in page (kept on the emulator's origin by default).
fn redirect(origin: &str, location: Option<String>) -> Response {
    let location = location.unwrap_or_else(|| {
        format!("{origin}/_signin?realm=dev.azure.com&reply_to=https%3A%2F%2Fdev.azure.com%2F")
    });
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    crate::wire::add_diagnostic_headers(response.headers_mut());
    response
}

fn drop_connection() -> Response {
    let mut response = Response::new(Body::empty());
    response.extensions_mut().insert(DropConnection);
    response
}

/// A status with `body`, or with an error body in the endpoint's own shape.
fn status_response(
    shared: &Shared,
    endpoint: Endpoint,
    status: u16,
    body: Option<String>,
    headers: &BTreeMap<String, String>,
    retry_after: Option<u64>,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Some(body) => {
            let content_type = if serde_json::from_str::<serde_json::Value>(&body).is_ok() {
                "application/json; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            };
            (code, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        None => crate::wire::host_error(endpoint, code, None, shared.now()),
    };
    let h = response.headers_mut();
    if let Some(secs) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    }
    response
}

/// The response's headers with its full `Content-Length`, then part of its body, then a broken
/// connection.
async fn truncate(response: Response, keep_bytes: Option<usize>) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, REWRITE_LIMIT)
        .await
        .unwrap_or_default();
    let keep = keep_bytes
        .unwrap_or(bytes.len() / 2)
        .min(bytes.len().saturating_sub(1));
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    use futures::StreamExt;
    let head = futures::stream::iter([Ok::<Bytes, std::io::Error>(bytes.slice(..keep))]);
    // Break the body a moment later, so the head and the first bytes are on the wire first
    // (HTTP/2 would otherwise reset the stream before sending its headers).
    let broken = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "response truncated by an injected fault",
        ))
    });
    Response::from_parts(parts, Body::from_stream(head.chain(broken)))
}

/// The response with top-level JSON fields removed (default `access_token`).
async fn strip_fields(response: Response, fields: &[String]) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, REWRITE_LIMIT)
        .await
        .unwrap_or_default();
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if fields.is_empty() {
        object.remove("access_token");
    }
    for field in fields {
        object.remove(field);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::Value::Object(object).to_string();
    Response::from_parts(parts, Body::from(body))
}

/// A 200 token response whose `access_token` makes the body `bytes` long.
fn oversized(bytes: usize) -> Response {
    let head = br#"{"token_type":"Bearer","expires_in":3599,"access_token":""#;
    let tail = br#""}"#;
    let pad = bytes.saturating_sub(head.len() + tail.len());
    let mut body = Vec::with_capacity(head.len() + pad + tail.len());
    body.extend_from_slice(head);
    body.resize(head.len() + pad, b'A');
    body.extend_from_slice(tail);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}
