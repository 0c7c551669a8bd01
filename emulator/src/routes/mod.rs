//! The HTTP application: routes, the observing middleware (body limit and request log) and
//! helpers shared by handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::errors::EntraError;
use crate::form;
use crate::request_log::{LoggedRequest, redact_field, redact_header};
use crate::state::Shared;

pub(crate) mod control;
pub(crate) mod entra;
#[cfg(test)]
mod fuzz;
pub(crate) mod inject;
pub(crate) mod managed_identity;
pub(crate) mod pipelines;
pub(crate) mod user_grants;

/// The scheme of the listener a request arrived on; with the `Host` header it gives the
/// request's origin, from which discovery documents build every URL (MSAL validates that the
/// issuer matches the authority it was configured with).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) scheme: &'static str,
    /// Whether this is the Service Fabric listener.
    pub(crate) service_fabric: bool,
}

impl Origin {
    /// The listener's name in the request log: `https`, `http` or `service_fabric`.
    pub(crate) fn listener(&self) -> &'static str {
        if self.service_fabric {
            "service_fabric"
        } else {
            self.scheme
        }
    }

    /// `scheme://host[:port]` of a request.
    pub(crate) fn of(&self, headers: &HeaderMap, uri: &Uri) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "127.0.0.1".to_string());
        format!("{}://{host}", self.scheme)
    }
}

/// The client's request id: the `client-request-id` / `x-ms-client-request-id` header, or the
/// `client-request-id` query parameter msal-node appends.
pub(crate) fn client_request_id(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    ["client-request-id", "x-ms-client-request-id"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok().map(str::to_string))
        .or_else(|| {
            let pairs = form::parse(uri.query()?.as_bytes()).ok()?;
            form::get(&pairs, "client-request-id").map(str::to_string)
        })
}

/// The router for one listener.
pub(crate) fn app(shared: Arc<Shared>, origin: Origin) -> Router {
    let entra = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token_v2))
        .route("/{tenant}/oauth2/token", post(entra::token_v1))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(entra::openid_configuration_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(entra::openid_configuration_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(entra::jwks))
        .route("/{tenant}/discovery/keys", get(entra::jwks))
        .route("/common/discovery/instance", get(entra::instance_discovery))
        .route(
            "/{org}/{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken",
            post(pipelines::oidc_token),
        )
        .route(
            "/metadata/identity/oauth2/token",
            get(managed_identity::imds),
        )
        .route(
            "/metadata/identity/oauth2/token/",
            get(managed_identity::imds),
        )
        .route("/msi/token", get(managed_identity::app_service))
        .route(
            "/arc/metadata/identity/oauth2/token",
            get(managed_identity::arc),
        )
        .route("/oauth2/token", post(managed_identity::cloud_shell))
        .route("/azureml/msi/token", get(managed_identity::azure_ml));
    Router::new()
        .merge(entra)
        .nest("/_emulator", control::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .layer(axum::Extension(origin))
        .with_state(shared)
}

/// The router of the Service Fabric listener (HTTPS with its own self-signed certificate).
pub(crate) fn service_fabric_app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/metadata/identity/oauth2/token",
            get(managed_identity::service_fabric),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .layer(axum::Extension(Origin {
            scheme: "https",
            service_fabric: true,
        }))
        .with_state(shared)
}

/// Entra's answer to a method an endpoint does not take (AADSTS900561), in JSON like every
/// other error.
async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Response {
    let body = serde_json::json!({
        "error": "invalid_request",
        "error_description": format!(
            "AADSTS900561: The endpoint only accepts other methods. Received a {method} request at '{}'.",
            uri.path()
        ),
        "error_codes": [900561],
    });
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

async fn not_found(uri: Uri) -> Response {
    let body = serde_json::json!({
        "error": "not_found",
        "error_description": format!("The emulator serves nothing at '{}'.", uri.path()),
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Buffers the body under the size limit, applies a fault if one fires, runs the handler and
/// logs the exchange.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let limit = shared.directory().settings().max_body_bytes;
    let origin = parts.extensions.get::<Origin>().copied().unwrap_or(Origin {
        scheme: "https",
        service_fabric: false,
    });
    let logged = !parts.uri.path().starts_with("/_emulator/");
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let response = EntraError::new(
                90004,
                &[&format!(
                    "the request body exceeds the limit of {limit} bytes"
                )],
            )
            .at(shared.now())
            .into_response();
            if logged {
                let entry = log_entry(&shared, origin.listener(), &parts, &[], response.status());
                shared.log.push(entry);
            }
            return response;
        }
    };
    let classify = || crate::faults::Endpoint::classify(parts.uri.path(), origin.service_fabric);
    // With no faults installed, this is one atomic load.
    let fault = if shared.faults.is_empty() {
        None
    } else {
        classify().and_then(|endpoint| {
            inject::select(
                &shared,
                Some(endpoint),
                parts.uri.path(),
                parts.uri.query(),
                &bytes,
            )
            .map(|f| (endpoint, f))
        })
    };
    let entry_body = if logged { Some(bytes.clone()) } else { None };
    let request = Request::from_parts(parts.clone(), Body::from(bytes));
    let Some((endpoint, fault)) = fault else {
        let response = json_rejection(&shared, classify, next.run(request).await).await;
        if let Some(body) = entry_body {
            let entry = log_entry(&shared, origin.listener(), &parts, &body, response.status());
            shared.log.push(entry);
        }
        return response;
    };
    let mut entry = entry_body.map(|body| {
        let mut entry = log_entry(&shared, origin.listener(), &parts, &body, StatusCode::OK);
        entry.fault = Some(fault.label.clone());
        entry
    });
    let silent = matches!(
        fault.action,
        crate::faults::FaultAction::Hang { .. } | crate::faults::FaultAction::Reset
    );
    if silent && let Some(mut entry) = entry.take() {
        // No response will be sent: log the request now, with status 0.
        entry.status = 0;
        shared.log.push(entry);
    }
    tracing::debug!(fault = %fault.label, path = parts.uri.path(), "injecting a fault");
    let origin_url = origin.of(&parts.headers, &parts.uri);
    let response = inject::apply(&shared, endpoint, &origin_url, fault.action, request, next).await;
    if let Some(mut entry) = entry {
        entry.status = response.status().as_u16();
        shared.log.push(entry);
    }
    response
}

/// Turns axum's plain-text extractor rejections (e.g. a path segment that percent-decodes to
/// invalid UTF-8) into JSON errors in the endpoint's shape, like every other error.
async fn json_rejection(
    shared: &Shared,
    endpoint: impl FnOnce() -> Option<crate::faults::Endpoint>,
    response: Response,
) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let text = if text.is_empty() {
        status.canonical_reason().unwrap_or("rejected").to_string()
    } else {
        text
    };
    let mut shaped = match endpoint() {
        Some(e) if !e.is_entra() => (
            status,
            axum::Json(serde_json::json!({
                "error": "invalid_request",
                "error_description": text,
            })),
        )
            .into_response(),
        _ => EntraError::new(90004, &[&text])
            .at(shared.now())
            .into_response(),
    };
    *shaped.status_mut() = status;
    shaped
}

fn log_entry(
    shared: &Shared,
    listener: &str,
    parts: &axum::http::request::Parts,
    body: &[u8],
    status: StatusCode,
) -> LoggedRequest {
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_string();
            let value = redact_header(&name, &String::from_utf8_lossy(value.as_bytes()));
            (name, value)
        })
        .collect();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let redact = |pairs: Vec<(String, String)>| {
        pairs
            .into_iter()
            .map(|(k, v)| {
                let v = redact_field(&k, &v);
                (k, v)
            })
            .collect::<Vec<_>>()
    };
    let form = if is_form {
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
        id: shared.log.next_id(),
        time: shared
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        listener: listener.to_string(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers,
        form,
        status: status.as_u16(),
        fault: None,
    }
}
