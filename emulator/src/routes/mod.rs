//! The HTTP application: routes, each tagged with the [`Endpoint`] it serves, and the
//! middleware around them. Handlers only extract and render: grants live in
//! [`crate::grants`], error shapes in [`crate::wire`], faults in [`crate::faults`].
//!
//! Two layers wrap every request:
//! - [`observe`] (outermost): buffers the body under the size limit, logs the exchange, and
//!   gives untagged rejections a JSON body;
//! - [`endpoint_layer`] (per tagged route): applies a fault if one fires, and turns framework
//!   rejections into the host's own error shape.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};

use crate::context::Buffered;
use crate::faults::{Endpoint, FaultAction};
use crate::request_log::LoggedRequest;
use crate::state::Shared;
use crate::wire::{self, Aadsts, ControlError, EntraError};

pub(crate) mod arm;
pub(crate) mod control;
pub(crate) mod entra;
#[cfg(test)]
mod fuzz;
pub(crate) mod guard;
pub(crate) mod inject;
pub(crate) mod key_vault;
mod log;
pub(crate) mod managed_identity;
pub(crate) mod pipelines;
pub(crate) mod resource_control;
pub(crate) mod sign_in;
mod sign_in_control;

/// The scheme of the listener a request arrived on; with the `Host` header it gives the
/// request's origin, from which discovery documents build every URL (MSAL validates that the
/// issuer matches the authority it was configured with).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub(crate) scheme: &'static str,
    /// Whether this is the Service Fabric listener.
    pub(crate) service_fabric: bool,
}

impl Default for Origin {
    fn default() -> Self {
        Self {
            scheme: "https",
            service_fabric: false,
        }
    }
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
    pub(crate) fn of(&self, headers: &axum::http::HeaderMap, uri: &Uri) -> String {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "127.0.0.1".to_string());
        format!("{}://{host}", self.scheme)
    }
}

/// Marks a request that came through transparent mode (the proxy port), addressed to Azure's
/// own host name: answers that name an authority name Entra's public one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transparent;

/// The public authority transparent mode answers as.
pub(crate) const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";

type Route = MethodRouter<Arc<Shared>>;

/// Tags `route` with `endpoint`: faults select on the tag and rejections take its shape.
fn tagged(shared: &Arc<Shared>, endpoint: Endpoint, route: Route) -> Route {
    route
        .layer::<_, std::convert::Infallible>(middleware::from_fn_with_state(
            shared.clone(),
            endpoint_layer,
        ))
        .layer(axum::Extension(endpoint))
}

/// Entra's own routes: token endpoints, discovery, keys.
fn entra_routes(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    use Endpoint::{Discovery, Jwks, Token};
    let t = |endpoint, route| tagged(shared, endpoint, route);
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            t(Token, post(entra::token_v2)),
        )
        .route("/{tenant}/oauth2/token", t(Token, post(entra::token_v1)))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            t(Discovery, get(entra::openid_configuration_v2)),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            t(Discovery, get(entra::openid_configuration_v1)),
        )
        .route("/{tenant}/discovery/v2.0/keys", t(Jwks, get(entra::jwks)))
        .route("/{tenant}/discovery/keys", t(Jwks, get(entra::jwks)))
        .route(
            "/common/discovery/instance",
            t(Discovery, get(entra::instance_discovery)),
        )
        .route(
            "/common/userrealm/{user}",
            t(Discovery, get(entra::user_realm)),
        )
        .merge(sign_in_routes(shared))
}

/// User sign-in: the authorization endpoint, the sign-in form, device codes.
fn sign_in_routes(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    use Endpoint::{Authorize, DeviceCode};
    let t = |endpoint, route| tagged(shared, endpoint, route);
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            t(
                Authorize,
                get(sign_in::authorize_v2).post(sign_in::authorize_v2),
            ),
        )
        .route(
            "/{tenant}/oauth2/authorize",
            t(
                Authorize,
                get(sign_in::authorize_v1).post(sign_in::authorize_v1),
            ),
        )
        .route("/{tenant}/login", t(Authorize, post(sign_in::login)))
        .route(
            "/{tenant}/oauth2/v2.0/logout",
            t(Authorize, get(sign_in::logout).post(sign_in::logout)),
        )
        .route(
            "/{tenant}/oauth2/logout",
            t(Authorize, get(sign_in::logout).post(sign_in::logout)),
        )
        .route(
            "/devicelogin",
            t(
                Authorize,
                get(sign_in::device_login_page).post(sign_in::device_login),
            ),
        )
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            t(DeviceCode, post(sign_in::device_code_v2)),
        )
        .route(
            "/{tenant}/oauth2/devicecode",
            t(DeviceCode, post(sign_in::device_code_v1)),
        )
}

/// The managed-identity hosts and Azure Pipelines' OIDC endpoint.
fn host_routes(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    use Endpoint::{AppService, Arc as ArcHost, AzureMl, CloudShell, Imds, Pipelines};
    use managed_identity as mi;
    let t = |endpoint, route| tagged(shared, endpoint, route);
    Router::new()
        .route(
            "/{org}/{project}/_apis/distributedtask/hubs/{hub}/plans/{plan}/jobs/{job}/oidctoken",
            t(Pipelines, post(pipelines::oidc_token)),
        )
        .route(
            "/metadata/identity/oauth2/token",
            t(Imds, get(mi::imds::token)),
        )
        .route(
            "/metadata/identity/oauth2/token/",
            t(Imds, get(mi::imds::token)),
        )
        .route("/msi/token", t(AppService, get(mi::app_service::token)))
        // Azure CLI 2.45 calls `{MSI_ENDPOINT}/?resource=…`.
        .route("/msi/token/", t(AppService, get(mi::app_service::token)))
        .route(
            "/arc/metadata/identity/oauth2/token",
            t(ArcHost, get(mi::arc::token)),
        )
        .route("/oauth2/token", t(CloudShell, post(mi::cloud_shell::token)))
        .route("/azureml/msi/token", t(AzureMl, get(mi::azure_ml::token)))
}

/// The control plane, behind its guard (see [`guard`]).
fn control_plane(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    control::router()
        .merge(sign_in_control::router())
        .merge(resource_control::router())
        .layer(middleware::from_fn_with_state(shared.clone(), guard::guard))
}

/// The router for one listener.
pub(crate) fn app(shared: Arc<Shared>, origin: Origin) -> Router {
    Router::new()
        .merge(entra_routes(&shared))
        .merge(host_routes(&shared))
        .nest("/_emulator", control_plane(&shared))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .layer(axum::Extension(origin))
        .with_state(shared)
}

/// The router of the Service Fabric listener (HTTPS with its own self-signed certificate).
pub(crate) fn service_fabric_app(shared: Arc<Shared>) -> Router {
    let token = tagged(
        &shared,
        Endpoint::ServiceFabric,
        get(managed_identity::service_fabric::token),
    );
    Router::new()
        .route("/metadata/identity/oauth2/token", token)
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
async fn method_not_allowed(
    State(shared): State<Arc<Shared>>,
    method: axum::http::Method,
    uri: Uri,
) -> Response {
    EntraError::from(Aadsts::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    })
    .at(shared.now())
    .into_response()
}

async fn not_found(uri: Uri) -> Response {
    let body = serde_json::json!({
        "error": "not_found",
        "error_description": format!("The emulator serves nothing at '{}'.", uri.path()),
    });
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// The fault that hit a request, for the request log (a response extension).
#[derive(Debug, Clone)]
struct FaultHit(String);

/// A request's log entry until its response is known. A fault that sends no response logs
/// it early (status 0).
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingLog(Arc<Mutex<Option<LoggedRequest>>>);

impl PendingLog {
    fn take(&self) -> Option<LoggedRequest> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Records the endpoint the request's route serves.
    fn tag(&self, endpoint: Endpoint) {
        if let Some(entry) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            entry.endpoint = Some(endpoint);
        }
    }

    /// Records what a resource made of the request: the resource, the caller, the failed check.
    fn note_resource(&self, note: &key_vault::ResourceNote) {
        if let Some(entry) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            entry.resource = Some(note.resource.clone());
            entry.caller = note.caller.clone();
            entry.failed_check = note.failed_check.clone();
        }
    }

    /// Logs the request now with `status` and the fault that hit it.
    fn push(&self, shared: &Shared, status: u16, fault: Option<String>) {
        if let Some(mut entry) = self.take() {
            entry.status = status;
            entry.fault = fault;
            shared.log.push(entry);
        }
    }
}

/// Buffers the body under the size limit, runs the route and logs the exchange.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let limit = shared.directory().settings().max_body_bytes;
    let origin = parts
        .extensions
        .get::<Origin>()
        .copied()
        .unwrap_or_default();
    let control = parts.uri.path().starts_with("/_emulator/");
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let response = EntraError::from(Aadsts::Malformed {
            detail: format!("the request body exceeds the limit of {limit} bytes"),
        })
        .at(shared.now())
        .into_response();
        if !control {
            shared.log.push(log::entry(
                &shared,
                origin.listener(),
                &parts,
                &[],
                response.status(),
            ));
        }
        return response;
    };
    let pending = PendingLog::default();
    if !control {
        let entry = log::entry(&shared, origin.listener(), &parts, &bytes, StatusCode::OK);
        *pending.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(entry);
        parts.extensions.insert(pending.clone());
    }
    parts
        .extensions
        .insert(Arc::new(Buffered::new(bytes.clone())));
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // A tagged route has given its answer its host's shape already (or a fault its own).
    let response = if response.extensions().get::<Endpoint>().is_some() {
        response
    } else {
        untagged_rejection(&shared, control, response).await
    };
    let fault = response.extensions().get::<FaultHit>().map(|f| f.0.clone());
    if let Some(note) = response.extensions().get::<key_vault::ResourceNote>() {
        pending.note_resource(note);
    }
    pending.push(&shared, response.status().as_u16(), fault);
    response
}

/// For a tagged route: applies a fault if one fires, and gives framework rejections the
/// host's error shape.
async fn endpoint_layer(
    State(shared): State<Arc<Shared>>,
    axum::Extension(endpoint): axum::Extension<Endpoint>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(pending) = request.extensions().get::<PendingLog>() {
        pending.tag(endpoint);
    }
    // With no faults installed, this is one atomic load.
    let fault = if shared.faults.is_empty() {
        None
    } else {
        inject::select(&shared, endpoint, &request)
    };
    let Some(fault) = fault else {
        let response = next.run(request).await;
        let mut response = shape_rejection(&shared, endpoint, response).await;
        response.extensions_mut().insert(endpoint);
        return response;
    };
    let silent = matches!(fault.action, FaultAction::Hang { .. } | FaultAction::Reset);
    if silent && let Some(pending) = request.extensions().get::<PendingLog>() {
        // No response will be sent: log the request now, with status 0.
        pending.push(&shared, 0, Some(fault.label.clone()));
    }
    tracing::debug!(fault = %fault.label, path = request.uri().path(), "injecting a fault");
    let origin = request
        .extensions()
        .get::<Origin>()
        .copied()
        .unwrap_or_default()
        .of(request.headers(), request.uri());
    let mut response = inject::apply(&shared, endpoint, &origin, fault.action, request, next).await;
    response.extensions_mut().insert(FaultHit(fault.label));
    response.extensions_mut().insert(endpoint);
    response
}

/// The text of a plain-text rejection (axum's extractors answer in text), or `None` when the
/// response needs no shaping.
async fn rejection_text(response: Response) -> Result<(StatusCode, String), Response> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Err(response);
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
    Ok((status, text))
}

/// Turns a plain-text extractor rejection (e.g. a path segment that percent-decodes to invalid
/// UTF-8) into the host's JSON error.
async fn shape_rejection(shared: &Shared, endpoint: Endpoint, response: Response) -> Response {
    match rejection_text(response).await {
        Ok((status, text)) => wire::host_error(endpoint, status, Some(&text), shared.now()),
        Err(response) => response,
    }
}

/// The same for routes with no tag: the control plane's shape there, Entra's elsewhere.
async fn untagged_rejection(shared: &Shared, control: bool, response: Response) -> Response {
    let (status, text) = match rejection_text(response).await {
        Ok(rejected) => rejected,
        Err(response) => return response,
    };
    if control {
        return ControlError {
            status,
            code: "bad_request",
            message: text,
        }
        .into_response();
    }
    EntraError::from(Aadsts::Malformed { detail: text })
        .at(shared.now())
        .with_status(status)
        .into_response()
}
