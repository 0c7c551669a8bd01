//! Request-log entries: what the log keeps of a request, secrets redacted.

use std::collections::BTreeMap;

use axum::http::{StatusCode, header};

use crate::form;
use crate::request_log::{LoggedRequest, redact_field, redact_header};
use crate::state::Shared;

/// The log entry for a request with `body`, answered with `status`.
pub(super) fn entry(
    shared: &Shared,
    listener: &str,
    parts: &axum::http::request::Parts,
    body: &[u8],
    status: StatusCode,
) -> LoggedRequest {
    let form = if is_form(parts) {
        form::parse(body).map(redact).unwrap_or_default()
    } else {
        Vec::new()
    };
    let query = parts
        .uri
        .query()
        .and_then(|q| form::parse(q.as_bytes()).ok())
        .map(redact)
        .unwrap_or_default();
    LoggedRequest {
        endpoint: None,
        id: shared.log.next_id(),
        time: shared
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        listener: listener.to_string(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers: headers(parts),
        form,
        status: status.as_u16(),
        fault: None,
        resource: None,
        caller: None,
        failed_check: None,
    }
}

/// The headers, lower-case, secrets redacted.
fn headers(parts: &axum::http::request::Parts) -> BTreeMap<String, String> {
    parts
        .headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_string();
            let value = redact_header(&name, &String::from_utf8_lossy(value.as_bytes()));
            (name, value)
        })
        .collect()
}

fn is_form(parts: &axum::http::request::Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Form or query pairs with secret values redacted.
fn redact(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            let v = redact_field(&k, &v);
            (k, v)
        })
        .collect()
}
