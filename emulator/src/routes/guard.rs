//! What keeps the control plane (`/_emulator/*`) out of a web page's reach. The emulator runs
//! next to the developer's browser, and any page can send requests to a loopback port (and,
//! by rebinding its DNS name to 127.0.0.1, read the answers). So a control call must:
//!
//! - name a loopback host (`127.0.0.0/8`, `localhost`, `[::1]`, any port) in `Host`: a rebound
//!   page's requests carry its own name;
//! - not come from a page of another origin: a non-loopback `Origin`, or `Sec-Fetch-Site:
//!   cross-site | same-site`, is refused;
//! - not be a "simple" request a page can send without a CORS preflight: a `POST` must be
//!   `application/json` (the flag short form goes as `{"spec": "…"}`); `PUT` and `DELETE`
//!   always need a preflight, which the emulator never grants;
//! - carry `Authorization: Bearer <token>` when a control token is configured (required when
//!   listening beyond loopback).
//!
//! The Entra, managed-identity and Pipelines routes are not guarded: IMDS proxy mode needs
//! `Host: 169.254.169.254`, and their answers are what any client may ask for.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::Shared;
use crate::wire::ControlError;

/// Refuses control calls a web page could make; see the module docs.
pub(crate) async fn guard(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let checks = check_host(host.as_deref())
        .and_then(|()| check_origin(request.headers()))
        .and_then(|()| check_content_type(request.method(), request.headers()))
        .and_then(|()| check_token(shared.control_token.as_deref(), request.headers()));
    match checks {
        Ok(()) => next.run(request).await,
        Err(error) => {
            tracing::warn!(path = request.uri().path(), reason = %error.message, "control call refused");
            error.into_response()
        }
    }
}

fn forbidden(message: String) -> ControlError {
    ControlError {
        status: StatusCode::FORBIDDEN,
        code: "forbidden",
        message,
    }
}

/// Whether `host` (a `Host` value without the port) is a loopback name or address.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host part of a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`).
fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    value.rsplit_once(':').map_or(value, |(name, _)| name)
}

fn check_host(host: Option<&str>) -> Result<(), ControlError> {
    match host {
        Some(value) if is_loopback_host(host_name(value)) => Ok(()),
        Some(value) => Err(forbidden(format!(
            "the control plane answers only requests to a loopback host (127.0.0.1, localhost, [::1]); this one was addressed to '{value}'"
        ))),
        None => Err(forbidden(
            "the control plane needs a Host header naming a loopback host".to_string(),
        )),
    }
}

fn check_origin(headers: &HeaderMap) -> Result<(), ControlError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && matches!(site, "cross-site" | "same-site")
    {
        return Err(forbidden(format!(
            "the control plane refuses requests from web pages (Sec-Fetch-Site: {site})"
        )));
    }
    let Some(origin) = text("origin") else {
        return Ok(());
    };
    let host = origin
        .split_once("://")
        .map(|(_, rest)| host_name(rest.trim_end_matches('/')));
    if host.is_some_and(is_loopback_host) {
        return Ok(());
    }
    Err(forbidden(format!(
        "the control plane refuses requests from web pages of other origins (Origin: {origin})"
    )))
}

fn check_content_type(method: &Method, headers: &HeaderMap) -> Result<(), ControlError> {
    if method != Method::POST {
        return Ok(());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        return Ok(());
    }
    Err(ControlError {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        message: format!(
            "control-plane POSTs must be application/json (got '{content_type}'): send a JSON body, `{{}}` when there is nothing to say; the fault short form goes as {{\"spec\": \"…\"}}"
        ),
    })
}

fn check_token(expected: Option<&str>, headers: &HeaderMap) -> Result<(), ControlError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if crate::crypto::constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ControlError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "the control token is wrong".to_string(),
        }),
        None => Err(ControlError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "this emulator requires its control token: send Authorization: Bearer <token> (the --control-token value or ENTRA_EMULATOR_CONTROL_TOKEN)".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_in_every_spelling() {
        for host in [
            "127.0.0.1:8443",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "[::1]",
            "127.1.2.3",
        ] {
            assert!(check_host(Some(host)).is_ok(), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8443",
            "169.254.169.254",
            "10.0.0.1:80",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(check_host(Some(host)).is_err(), "{host}");
        }
        assert!(check_host(None).is_err());
    }

    #[test]
    fn origins_and_fetch_sites() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        assert!(check_origin(&headers(&[])).is_ok());
        assert!(check_origin(&headers(&[("origin", "http://localhost:3000")])).is_ok());
        assert!(check_origin(&headers(&[("origin", "https://127.0.0.1:8443")])).is_ok());
        assert!(check_origin(&headers(&[("origin", "http://evil.example")])).is_err());
        assert!(check_origin(&headers(&[("origin", "null")])).is_err());
        assert!(check_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(check_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
        assert!(check_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(check_origin(&headers(&[("sec-fetch-site", "none")])).is_ok());
    }
}
