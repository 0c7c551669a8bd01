//! The control plane under `/_emulator/`: the same operations the library exposes on
//! [`crate::Emulator`], as a JSON API for scripts in any language.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::config::{
    Application, CertificateSpec, ClientSecret, FederatedCredential, Seed, Tenant,
};
use crate::error::EmulatorError;
use crate::faults::Fault;
use crate::state::{Ring, Shared};
use crate::tokens::{self, KubernetesTokenRequest};
use crate::wire::ControlError;

type Result<T> = std::result::Result<T, ControlError>;

impl Shared {
    /// Adds a tenant.
    pub(crate) fn add_tenant(&self, tenant: Tenant) -> std::result::Result<(), EmulatorError> {
        self.edit_seed(|seed| {
            seed.tenants.push(tenant);
            Ok(())
        })
    }

    /// Adds an application.
    pub(crate) fn add_application(
        &self,
        app: Application,
    ) -> std::result::Result<(), EmulatorError> {
        self.edit_seed(|seed| {
            seed.applications.push(app);
            Ok(())
        })
    }

    /// Edits every application with `client_id`.
    fn edit_application(
        &self,
        client_id: &str,
        edit: impl Fn(&mut Application),
    ) -> std::result::Result<(), EmulatorError> {
        self.edit_seed(|seed| {
            let mut found = false;
            for app in seed
                .applications
                .iter_mut()
                .filter(|a| a.client_id.eq_ignore_ascii_case(client_id))
            {
                edit(app);
                found = true;
            }
            found
                .then_some(())
                .ok_or_else(|| EmulatorError::ApplicationNotFound(client_id.to_string()))
        })
    }

    /// Adds a client secret to an application.
    pub(crate) fn add_secret(
        &self,
        client_id: &str,
        secret: ClientSecret,
    ) -> std::result::Result<(), EmulatorError> {
        self.edit_application(client_id, |a| a.secrets.push(secret.clone()))
    }

    /// Adds a certificate to an application.
    pub(crate) fn add_certificate(
        &self,
        client_id: &str,
        cert: CertificateSpec,
    ) -> std::result::Result<(), EmulatorError> {
        self.edit_application(client_id, |a| a.certificates.push(cert.clone()))
    }

    /// Adds a federated identity credential to an application.
    pub(crate) fn add_federated_credential(
        &self,
        client_id: &str,
        fic: FederatedCredential,
    ) -> std::result::Result<(), EmulatorError> {
        self.edit_application(client_id, |a| a.federated_credentials.push(fic.clone()))
    }

    /// Mints a Kubernetes service-account token from the emulator's issuer.
    pub(crate) fn mint_kubernetes_token(&self, req: &KubernetesTokenRequest) -> String {
        let issuer = self.directory().seed.kubernetes.issuer.clone();
        let key = self.signing_key(Ring::Kubernetes);
        tokens::kubernetes_token(&key, &issuer, req, self.now().unix_timestamp())
    }
}

fn bad(e: EmulatorError) -> ControlError {
    if e.is_not_found() {
        ControlError::not_found(e.to_string())
    } else {
        ControlError::bad_request(e.to_string())
    }
}

fn ok() -> Response {
    Json(json!({ "ok": true })).into_response()
}

/// The control plane's routes (nested under `/_emulator`).
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/config", get(config))
        .route("/seed", put(apply_seed))
        .route("/reset", post(reset))
        .route("/tenants", post(add_tenant))
        .route("/applications", post(add_application))
        .route("/applications/{client_id}/secrets", post(add_secret))
        .route(
            "/applications/{client_id}/certificates",
            post(add_certificate),
        )
        .route(
            "/applications/{client_id}/federated-credentials",
            post(add_federated_credential),
        )
        .route("/requests", get(requests).delete(clear_requests))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/faults/{id}", axum::routing::delete(remove_fault))
        .route("/tokens/kubernetes", post(mint_kubernetes))
        .route("/clock", get(clock).put(set_clock))
        .route("/keys/rotate", post(rotate))
        .route(
            "/issuers/kubernetes/.well-known/openid-configuration",
            get(kubernetes_discovery),
        )
        .route("/issuers/kubernetes/openid/v1/jwks", get(kubernetes_jwks))
        .route("/issuers/pipelines/.well-known/jwks", get(pipelines_jwks))
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

async fn config(State(s): State<Arc<Shared>>, Query(q): Query<FormatQuery>) -> Response {
    let seed = s.directory().seed.clone();
    if q.format.as_deref() == Some("toml") {
        return ([(header::CONTENT_TYPE, "application/toml")], seed.to_toml()).into_response();
    }
    Json(seed).into_response()
}

async fn apply_seed(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ControlError::bad_request("the seed is not UTF-8"))?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let seed = if is_json {
        Seed::from_json(text)
    } else {
        Seed::from_toml(text)
    }
    .map_err(|e| bad(e.into()))?;
    s.apply_seed(seed).map_err(bad)?;
    Ok(ok())
}

async fn reset(State(s): State<Arc<Shared>>) -> Result<Response> {
    s.reset()
        .map_err(|e| ControlError::internal(e.to_string()))?;
    Ok(ok())
}

async fn add_tenant(State(s): State<Arc<Shared>>, Json(t): Json<Tenant>) -> Result<Response> {
    s.add_tenant(t).map_err(bad)?;
    Ok(ok())
}

async fn add_application(
    State(s): State<Arc<Shared>>,
    Json(a): Json<Application>,
) -> Result<Response> {
    s.add_application(a).map_err(bad)?;
    Ok(ok())
}

async fn add_secret(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(secret): Json<ClientSecret>,
) -> Result<Response> {
    s.add_secret(&id, secret).map_err(bad)?;
    Ok(ok())
}

async fn add_certificate(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(cert): Json<CertificateSpec>,
) -> Result<Response> {
    s.add_certificate(&id, cert).map_err(bad)?;
    Ok(ok())
}

async fn add_federated_credential(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(fic): Json<FederatedCredential>,
) -> Result<Response> {
    s.add_federated_credential(&id, fic).map_err(bad)?;
    Ok(ok())
}

async fn requests(State(s): State<Arc<Shared>>) -> Response {
    Json(s.log.snapshot()).into_response()
}

async fn clear_requests(State(s): State<Arc<Shared>>) -> Response {
    s.log.clear();
    ok()
}

async fn list_faults(State(s): State<Arc<Shared>>) -> Response {
    Json(s.faults.list()).into_response()
}

/// `POST /_emulator/faults`: a fault as JSON, or `{"spec": "…"}` with the `--fault` short form.
async fn add_fault(State(s): State<Arc<Shared>>, body: Bytes) -> Result<Response> {
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ControlError::bad_request(format!("invalid fault: {e}")))?;
    let fault = match value.get("spec").and_then(|v| v.as_str()) {
        Some(spec) => {
            Fault::parse_flag(spec).map_err(|e| ControlError::bad_request(e.to_string()))?
        }
        None => serde_json::from_value::<Fault>(value)
            .map_err(|e| ControlError::bad_request(format!("invalid fault: {e}")))?,
    };
    let id = s
        .faults
        .add(fault)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    Ok(Json(json!({ "id": id })).into_response())
}

async fn clear_faults(State(s): State<Arc<Shared>>) -> Response {
    s.faults.clear();
    ok()
}

async fn remove_fault(State(s): State<Arc<Shared>>, Path(id): Path<u64>) -> Result<Response> {
    if s.faults.remove(id) {
        Ok(ok())
    } else {
        Err(ControlError::not_found(format!("no fault has id {id}")))
    }
}

#[derive(Deserialize)]
struct MintRequest {
    #[serde(flatten)]
    token: KubernetesTokenRequest,
    /// Also write the token to this file.
    file: Option<String>,
}

/// The longest Kubernetes token lifetime the control plane mints (a year).
const MAX_KUBERNETES_LIFETIME_SECS: i64 = 366 * 24 * 3600;

async fn mint_kubernetes(
    State(s): State<Arc<Shared>>,
    Json(req): Json<MintRequest>,
) -> Result<Response> {
    if let Some(secs) = req.token.lifetime_secs
        && !(1..=MAX_KUBERNETES_LIFETIME_SECS).contains(&secs)
    {
        return Err(ControlError::bad_request(format!(
            "lifetime_secs {secs} is out of range; use 1 to {MAX_KUBERNETES_LIFETIME_SECS}"
        )));
    }
    let token = s.mint_kubernetes_token(&req.token);
    if let Some(file) = &req.file {
        let path = inside_state_dir(&s.state_dir, file)?;
        crate::pki::write_atomic(&path, token.as_bytes(), true)
            .map_err(|e| ControlError::bad_request(format!("writing '{file}': {e}")))?;
    }
    Ok(Json(json!({ "token": token, "file": req.file })).into_response())
}

/// `file` resolved inside the state directory (relative names are relative to it); anything
/// that would land outside it is refused, so the control plane cannot write elsewhere.
pub(crate) fn inside_state_dir(
    state_dir: &std::path::Path,
    file: &str,
) -> Result<std::path::PathBuf> {
    use std::path::Component;
    let path = std::path::Path::new(file);
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        state_dir.join(path)
    };
    let root = state_dir
        .canonicalize()
        .unwrap_or_else(|_| state_dir.to_path_buf());
    let parent = path.parent().and_then(|p| p.canonicalize().ok());
    let plain = path
        .components()
        .all(|c| !matches!(c, Component::ParentDir));
    match (parent, path.file_name()) {
        (Some(parent), Some(name)) if plain && parent.starts_with(&root) => Ok(parent.join(name)),
        _ => Err(ControlError::bad_request(format!(
            "'{file}' is outside the state directory {}; the control plane writes only there (give a name relative to it)",
            state_dir.display()
        ))),
    }
}

async fn clock(State(s): State<Arc<Shared>>) -> Response {
    let now = s.now();
    Json(json!({ "now": now.unix_timestamp(), "offset_secs": s.clock_offset() })).into_response()
}

#[derive(Deserialize)]
struct ClockRequest {
    offset_secs: i64,
}

/// The largest clock offset the control plane accepts (about a century each way): beyond
/// it, token times would overflow.
const MAX_CLOCK_OFFSET_SECS: i64 = 100 * 366 * 24 * 3600;

async fn set_clock(
    State(s): State<Arc<Shared>>,
    Json(req): Json<ClockRequest>,
) -> Result<Response> {
    if req.offset_secs.unsigned_abs() > MAX_CLOCK_OFFSET_SECS as u64 {
        return Err(ControlError::bad_request(format!(
            "offset_secs {} is out of range; use -{MAX_CLOCK_OFFSET_SECS} to {MAX_CLOCK_OFFSET_SECS}",
            req.offset_secs
        )));
    }
    s.set_clock_offset(req.offset_secs);
    Ok(ok())
}

#[derive(Deserialize, Default)]
struct RotateRequest {
    ring: Option<String>,
}

async fn rotate(State(s): State<Arc<Shared>>, body: Bytes) -> Result<Response> {
    let req: RotateRequest = if body.is_empty() {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ControlError::bad_request(e.to_string()))?
    };
    let ring = match req.ring.as_deref().unwrap_or("tokens") {
        "tokens" => Ring::Tokens,
        "kubernetes" => Ring::Kubernetes,
        "pipelines" => Ring::Pipelines,
        other => {
            return Err(ControlError::bad_request(format!(
                "unknown key ring '{other}'; use tokens, kubernetes or pipelines"
            )));
        }
    };
    let kid = s
        .rotate(ring)
        .map_err(|e| ControlError::internal(e.to_string()))?;
    Ok(Json(json!({ "kid": kid })).into_response())
}

async fn kubernetes_discovery(State(s): State<Arc<Shared>>) -> Response {
    let issuer = s.directory().seed.kubernetes.issuer.clone();
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/openid/v1/jwks"),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

async fn kubernetes_jwks(State(s): State<Arc<Shared>>) -> Response {
    Json(tokens::jwks(&s.published_keys(Ring::Kubernetes), None)).into_response()
}

async fn pipelines_jwks(State(s): State<Arc<Shared>>) -> Response {
    Json(tokens::jwks(&s.published_keys(Ring::Pipelines), None)).into_response()
}
