//! The Key Vault data plane over HTTP: one router per vault, each on its own HTTPS listener.
//!
//! Every route checks the bearer token first ([`authenticate`]), before the body or the
//! `api-version` are looked at: the SDKs' first request is bodiless and unauthenticated, and
//! the 401 challenge tells them the tenant and the resource to ask a token for. Then the
//! caller's role on the vault is checked per operation (403 `ForbiddenByRbac`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::{Origin, Route, Transparent, observe, tagged};
use crate::assertion::format_time;
use crate::faults::Endpoint;
use crate::resources::access::{self, Caller, Rejection, Requirements};
use crate::resources::key_vault::json::{self as kv_json, SecretBody};
use crate::resources::key_vault::{self, StoreError};
use crate::resources::{Action, Role, cae};
use crate::state::Shared;
use crate::wire::KeyVaultError;

/// The vault a listener serves (lower-case name).
#[derive(Debug, Clone)]
pub(crate) struct VaultName(pub(crate) Arc<str>);

/// What the request log records of a resource call: the vault, the caller, the failed check.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceNote {
    pub(crate) resource: String,
    pub(crate) caller: Option<String>,
    pub(crate) failed_check: Option<String>,
}

type Result<T = Response> = std::result::Result<T, KeyVaultError>;

/// The router of vault `name`'s listener.
pub(crate) fn app(shared: Arc<Shared>, name: &str) -> Router {
    let vault = VaultName(Arc::from(name.to_ascii_lowercase()));
    let t = |route: Route| {
        tagged(
            &shared,
            Endpoint::KeyVault,
            route.layer(middleware::from_fn_with_state(shared.clone(), authenticate)),
        )
    };
    Router::new()
        .route("/secrets", t(get(list_secrets)))
        .route("/secrets/", t(get(list_secrets)))
        .route(
            "/secrets/{name}",
            t(get(get_latest)
                .put(set_secret)
                .patch(update_latest)
                .delete(delete_secret)),
        )
        .route("/secrets/{name}/", t(get(get_latest).patch(update_latest)))
        .route("/secrets/{name}/versions", t(get(list_versions)))
        .route(
            "/secrets/{name}/{version}",
            t(get(get_version).patch(update_version)),
        )
        .route("/deletedsecrets", t(get(list_deleted)))
        .route(
            "/deletedsecrets/{name}",
            t(get(get_deleted).delete(purge_deleted)),
        )
        .route(
            "/deletedsecrets/{name}/recover",
            t(axum::routing::post(recover_deleted)),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .layer(Extension(vault))
        .layer(Extension(Origin {
            scheme: "https",
            service_fabric: false,
        }))
        .with_state(shared)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    KeyVaultError::new(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("Key Vault serves nothing at '{}'.", uri.path()),
    )
    .into_response()
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    KeyVaultError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "BadParameter",
        format!(
            "The requested resource '{}' does not support http method '{method}'.",
            uri.path()
        ),
    )
    .into_response()
}

/// The seeded vault's tenant, or 404 when the seed no longer has the vault.
fn vault_tenant(shared: &Shared, vault: &VaultName) -> Result<String> {
    shared
        .directory()
        .seed
        .key_vaults
        .iter()
        .find(|v| v.name.eq_ignore_ascii_case(&vault.0))
        .map(|v| v.tenant.clone())
        .ok_or_else(|| {
            KeyVaultError::new(
                StatusCode::NOT_FOUND,
                "VaultNotFound",
                format!("The vault '{}' is no longer in the seed.", vault.0),
            )
        })
}

/// Checks the bearer token, then the `api-version`; the caller goes on as an extension.
async fn authenticate(
    State(shared): State<Arc<Shared>>,
    Extension(vault): Extension<VaultName>,
    request: Request,
    next: Next,
) -> Response {
    let note = ResourceNote {
        resource: format!("key_vault:{}", vault.0),
        ..ResourceNote::default()
    };
    let checked = check(&shared, &vault, &request).map_err(|failure| {
        let (error, failed) = *failure;
        (error.into_response(), failed)
    });
    admit(note, checked, request, next).await
}

/// A resource's checks done: lets the request through with its caller as an extension, or
/// answers the refusal; either way the request log learns the resource, the caller and the
/// failed check (a 403 from the handler is a missing role assignment).
pub(crate) async fn admit(
    mut note: ResourceNote,
    checked: std::result::Result<Arc<Caller>, (Response, Option<String>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut response = match checked {
        Ok(caller) => {
            note.caller = Some(caller.describe());
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err((refusal, failed)) => {
            note.failed_check = failed;
            refusal
        }
    };
    if response.status() == StatusCode::FORBIDDEN && note.failed_check.is_none() {
        note.failed_check = Some("role_assignment".into());
    }
    response.extensions_mut().insert(note);
    response
}

/// The token and `api-version` checks; the error and the name of the failed check.
fn check(
    shared: &Shared,
    vault: &VaultName,
    request: &Request,
) -> std::result::Result<Arc<Caller>, Box<(KeyVaultError, Option<String>)>> {
    let tenant = vault_tenant(shared, vault).map_err(|e| Box::new((e, None)))?;
    let authorization = authorization(request);
    let requirements = Requirements {
        tenant_id: Some(&tenant),
        audiences: &key_vault::AUDIENCES,
    };
    let caller = access::authenticate(shared, authorization, &requirements).map_err(|r| {
        let failed = r.check().to_string();
        let transparent = request.extensions().get::<Transparent>().is_some();
        Box::new((unauthorized(shared, &tenant, transparent, &r), Some(failed)))
    })?;
    let version = query_param(request.uri().query(), "api-version");
    match version {
        None => Err(KeyVaultError::new(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The 'api-version' query parameter is missing.",
        )),
        Some(v) if !key_vault::api_version_supported(&v) => Err(KeyVaultError::new(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!(
                "The specified version ({v}) is not recognized. Consider using the latest supported version (2025-07-01)."
            ),
        )),
        Some(_) => Ok(caller),
    }
    .map_err(|e| Box::new((e, Some("api_version".into()))))
}

/// The 401 for a rejected token, with the challenge a client needs to get a good one.
fn unauthorized(
    shared: &Shared,
    tenant: &str,
    transparent: bool,
    rejection: &Rejection,
) -> KeyVaultError {
    // Through transparent mode the client knows the emulator as Entra's public authority.
    let authority = if transparent {
        super::PUBLIC_AUTHORITY.to_string()
    } else {
        shared.https_origin.get().cloned().unwrap_or_default()
    };
    let message = match rejection {
        Rejection::Missing => "AKV10000: Request is missing a Bearer or PoP token.".to_string(),
        Rejection::Malformed => {
            "Invalid token: the Authorization header's bearer token is not a well-formed JWT."
                .to_string()
        }
        Rejection::Signature { kid } => format!(
            "Invalid token: the signature does not verify with any published signing key (kid '{kid}')."
        ),
        Rejection::Expired { expires } => format!(
            "Token validation failed: the token expired at {}.",
            format_time(*expires)
        ),
        Rejection::NotYetValid { not_before } => format!(
            "Token validation failed: the token is not valid before {}.",
            format_time(*not_before)
        ),
        Rejection::Audience { found, expected } => {
            format!("AKV10022: Invalid audience. Expected {expected}, found: {found}.")
        }
        Rejection::Issuer { found, expected } => format!(
            "AKV10032: Invalid issuer. Expected one of {}, found {found}.",
            expected.join(", ")
        ),
        Rejection::Revoked { revoked_at } => format!(
            "Token validation failed: access was revoked at {}; request a new token with the claims of the WWW-Authenticate challenge.",
            format_time(*revoked_at)
        ),
    };
    let challenge = match rejection {
        Rejection::Revoked { revoked_at } => cae::challenge(
            &format!("{authority}/{tenant}/oauth2/authorize"),
            *revoked_at,
        ),
        _ => format!(
            r#"Bearer authorization="{authority}/{tenant}", resource="{}""#,
            key_vault::RESOURCE
        ),
    };
    KeyVaultError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message).with_challenge(challenge)
}

/// The request's `Authorization` header, if it is text.
pub(crate) fn authorization(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    crate::form::parse(query?.as_bytes())
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// What every handler needs: the vault, the caller, the origin ids are built from, the query.
pub(crate) struct VaultCall {
    shared: Arc<Shared>,
    vault: VaultName,
    caller: Arc<Caller>,
    origin: String,
    query: Option<String>,
}

impl FromRequestParts<Arc<Shared>> for VaultCall {
    type Rejection = KeyVaultError;

    async fn from_request_parts(parts: &mut Parts, shared: &Arc<Shared>) -> Result<Self> {
        let missing = || {
            KeyVaultError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "the vault route ran without its listener's context",
            )
        };
        let vault = parts
            .extensions
            .get::<VaultName>()
            .cloned()
            .ok_or_else(missing)?;
        let caller = parts
            .extensions
            .get::<Arc<Caller>>()
            .cloned()
            .ok_or_else(missing)?;
        let origin = Origin::default().of(&parts.headers, &parts.uri);
        Ok(Self {
            shared: shared.clone(),
            vault,
            caller,
            origin,
            query: parts.uri.query().map(str::to_string),
        })
    }
}

impl VaultCall {
    /// 403 unless one of the caller's role assignments allows `action`.
    fn authorize(&self, action: Action, secret: Option<&str>) -> Result<()> {
        let directory = self.shared.directory();
        let ids = self.caller.ids();
        let allowed = directory
            .seed
            .key_vaults
            .iter()
            .filter(|v| v.name.eq_ignore_ascii_case(&self.vault.0))
            .flat_map(|v| &v.role_assignments)
            .filter(|a| {
                ids.iter()
                    .any(|id| id.eq_ignore_ascii_case(a.principal.trim()))
            })
            .filter_map(|a| Role::parse(&a.role))
            .any(|role| role.allows(action));
        if allowed {
            return Ok(());
        }
        let resource = format!(
            "/subscriptions/{}/resourcegroups/emulator-rg/providers/microsoft.keyvault/vaults/{}{}",
            crate::config::well_known::SUBSCRIPTION_ID,
            self.vault.0,
            secret.map(|s| format!("/secrets/{s}")).unwrap_or_default()
        );
        let message = format!(
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: {}\r\nAction: '{}'\r\nResource: '{resource}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: {};location=eastus\r\n",
            self.caller.describe(),
            action.data_action(),
            self.vault.0
        );
        Err(
            KeyVaultError::new(StatusCode::FORBIDDEN, "Forbidden", message)
                .with_inner("ForbiddenByRbac"),
        )
    }

    fn now(&self) -> i64 {
        self.shared.now().unix_timestamp()
    }

    /// A page of `items` with a `nextLink` to the rest (`maxresults` 1-25, `$skiptoken`).
    fn page(&self, path: &str, items: Vec<Value>) -> Result {
        let query = self.query.as_deref();
        let max = match query_param(query, "maxresults") {
            None => 25,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|m| (1..=25).contains(m))
                .ok_or_else(|| {
                    KeyVaultError::new(
                        StatusCode::BAD_REQUEST,
                        "BadParameter",
                        format!("Invalid maxresults '{m}': use a number from 1 to 25."),
                    )
                })?,
        };
        let skip = query_param(query, "$skiptoken")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0);
        let api_version = query_param(query, "api-version").unwrap_or_default();
        let end = skip.saturating_add(max).min(items.len());
        let value: Vec<Value> = items.get(skip.min(end)..end).unwrap_or_default().to_vec();
        let next = (end < items.len()).then(|| {
            format!(
                "{}{path}?api-version={api_version}&$skiptoken={end}&maxresults={max}",
                self.origin
            )
        });
        Ok(Json(json!({ "value": value, "nextLink": next })).into_response())
    }
}

/// The error for a store failure about secret `name`.
fn store_error(error: StoreError, name: &str) -> KeyVaultError {
    let help =
        "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182";
    match error {
        StoreError::NotFound => KeyVaultError::new(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            format!(
                "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. {help}"
            ),
        ),
        StoreError::DeletedNotFound => KeyVaultError::new(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            format!("Deleted Secret not found: {name}"),
        ),
        StoreError::DeletedConflict => KeyVaultError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "Secret is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.",
        ),
        StoreError::LiveConflict => KeyVaultError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("A secret named {name} exists; it cannot be recovered over."),
        ),
        StoreError::NoVault => KeyVaultError::new(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            "This vault's data is not loaded.",
        ),
        StoreError::Io(message) => KeyVaultError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!("The emulator could not save the vault: {message}"),
        ),
    }
}

fn valid_name(name: &str) -> Result<()> {
    if key_vault::secret_name_is_valid(name) {
        Ok(())
    } else {
        Err(KeyVaultError::new(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            format!(
                "The request URI contains an invalid name: {name}. Secret names may only contain alphanumeric characters and dashes, 1-127 characters long."
            ),
        ))
    }
}

async fn set_secret(call: VaultCall, Path(name): Path<String>, body: Bytes) -> Result {
    call.authorize(Action::SetSecret, Some(&name))?;
    valid_name(&name)?;
    let body = SecretBody::parse(&body)
        .map_err(|m| KeyVaultError::new(StatusCode::BAD_REQUEST, "BadParameter", m))?;
    let value = body.value.clone().ok_or_else(|| {
        KeyVaultError::new(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Property 'value' is required.",
        )
    })?;
    let (name, version) = call
        .shared
        .vaults
        .set(&call.vault.0, &name, value, body.change(), call.now())
        .map_err(|e| store_error(e, &name))?;
    Ok(Json(kv_json::bundle(&call.origin, &name, &version, true)).into_response())
}

async fn get_secret(call: &VaultCall, name: &str, version: Option<&str>) -> Result {
    call.authorize(Action::GetSecret, Some(name))?;
    let (name, v) = call
        .shared
        .vaults
        .get(&call.vault.0, name, version)
        .map_err(|e| store_error(e, name))?;
    if !v.enabled {
        return Err(KeyVaultError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("Operation get is not allowed on a disabled secret: {name}."),
        )
        .with_inner("SecretDisabled"));
    }
    Ok(Json(kv_json::bundle(&call.origin, &name, &v, true)).into_response())
}

async fn get_latest(call: VaultCall, Path(name): Path<String>) -> Result {
    get_secret(&call, &name, None).await
}

async fn get_version(call: VaultCall, Path((name, version)): Path<(String, String)>) -> Result {
    get_secret(&call, &name, Some(&version)).await
}

async fn update(call: &VaultCall, name: &str, version: Option<&str>, body: &[u8]) -> Result {
    call.authorize(Action::Update, Some(name))?;
    let body = SecretBody::parse(body)
        .map_err(|m| KeyVaultError::new(StatusCode::BAD_REQUEST, "BadParameter", m))?;
    let (name, v) = call
        .shared
        .vaults
        .update(&call.vault.0, name, version, body.change(), call.now())
        .map_err(|e| store_error(e, name))?;
    Ok(Json(kv_json::bundle(&call.origin, &name, &v, false)).into_response())
}

async fn update_latest(call: VaultCall, Path(name): Path<String>, body: Bytes) -> Result {
    update(&call, &name, None, &body).await
}

async fn update_version(
    call: VaultCall,
    Path((name, version)): Path<(String, String)>,
    body: Bytes,
) -> Result {
    update(&call, &name, Some(&version), &body).await
}

async fn list_secrets(call: VaultCall) -> Result {
    call.authorize(Action::ReadMetadata, None)?;
    let items = call
        .shared
        .vaults
        .list(&call.vault.0)
        .map_err(|e| store_error(e, ""))?
        .iter()
        .map(|(name, v)| kv_json::item(&call.origin, name, v, false))
        .collect();
    call.page("/secrets", items)
}

async fn list_versions(call: VaultCall, Path(name): Path<String>) -> Result {
    call.authorize(Action::ReadMetadata, Some(&name))?;
    let items = call
        .shared
        .vaults
        .versions(&call.vault.0, &name)
        .map_err(|e| store_error(e, &name))?
        .iter()
        .map(|(n, v)| kv_json::item(&call.origin, n, v, true))
        .collect();
    call.page(&format!("/secrets/{name}/versions"), items)
}

async fn delete_secret(call: VaultCall, Path(name): Path<String>) -> Result {
    call.authorize(Action::Delete, Some(&name))?;
    let deleted = call
        .shared
        .vaults
        .delete(&call.vault.0, &name, call.now())
        .map_err(|e| store_error(e, &name))?;
    Ok(Json(kv_json::deleted_bundle(&call.origin, &deleted)).into_response())
}

async fn get_deleted(call: VaultCall, Path(name): Path<String>) -> Result {
    call.authorize(Action::ReadMetadata, Some(&name))?;
    let deleted = call
        .shared
        .vaults
        .deleted(&call.vault.0, &name)
        .map_err(|e| store_error(e, &name))?;
    Ok(Json(kv_json::deleted_bundle(&call.origin, &deleted)).into_response())
}

async fn list_deleted(call: VaultCall) -> Result {
    call.authorize(Action::ReadMetadata, None)?;
    let items = call
        .shared
        .vaults
        .deleted_list(&call.vault.0)
        .map_err(|e| store_error(e, ""))?
        .iter()
        .map(|d| kv_json::deleted_item(&call.origin, d))
        .collect();
    call.page("/deletedsecrets", items)
}

async fn recover_deleted(call: VaultCall, Path(name): Path<String>) -> Result {
    call.authorize(Action::Recover, Some(&name))?;
    let (name, v) = call
        .shared
        .vaults
        .recover(&call.vault.0, &name)
        .map_err(|e| store_error(e, &name))?;
    Ok(Json(kv_json::bundle(&call.origin, &name, &v, false)).into_response())
}

async fn purge_deleted(call: VaultCall, Path(name): Path<String>) -> Result {
    call.authorize(Action::Purge, Some(&name))?;
    call.shared
        .vaults
        .purge(&call.vault.0, &name)
        .map_err(|e| store_error(e, &name))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
