//! Managed-identity hosts: IMDS (`/metadata/identity/oauth2/token`) and App Service
//! (`/msi/token`, api-version 2019-08-01 and the legacy 2017-09-01 form). Served on both
//! listeners; the plain HTTP one is what `IDENTITY_ENDPOINT` / `AZURE_POD_IDENTITY_AUTHORITY_HOST`
//! / `HTTP_PROXY` point at. Every value in a response is a string, as the real hosts send them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::ManagedIdentity;
use crate::directory::{Directory, ResolvedResource};
use crate::state::{Ring, Shared};
use crate::tokens::{self, AppTokenRequest, ClientAuthMethod};

/// An IMDS-shaped error: `{"error", "error_description"}`.
fn imds_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// An App Service-shaped error: `{"statusCode", "message", "correlationId"}`.
fn app_service_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({
            "statusCode": status.as_u16().to_string(),
            "message": message,
            "correlationId": uuid::Uuid::new_v4().to_string(),
        })),
    )
        .into_response()
}

fn param<'a>(query: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Which identity a request selects.
enum Selector<'a> {
    System,
    ClientId(&'a str),
    ObjectId(&'a str),
    ResourceId(&'a str),
}

fn select<'d>(directory: &'d Directory, selector: &Selector<'_>) -> Option<&'d ManagedIdentity> {
    let ids = &directory.seed.managed_identities;
    match selector {
        Selector::System => ids.iter().find(|m| m.system_assigned),
        Selector::ClientId(id) => ids.iter().find(|m| m.client_id.eq_ignore_ascii_case(id)),
        Selector::ObjectId(id) => ids.iter().find(|m| m.object_id.eq_ignore_ascii_case(id)),
        Selector::ResourceId(id) => ids.iter().find(|m| m.resource_id.eq_ignore_ascii_case(id)),
    }
}

/// Mints a token for `identity` and `resource`; `Err` when the resource is unknown in strict
/// mode.
fn mint(
    shared: &Shared,
    identity: &ManagedIdentity,
    resource: &str,
) -> Result<(String, i64, i64), String> {
    let directory = shared.directory();
    let trimmed = resource.trim_end_matches("/.default");
    let resolved = match directory.resource(&identity.tenant, trimmed) {
        Some(r) => r,
        None if directory.settings().strict => {
            return Err(format!(
                "AADSTS500011: The resource principal named {trimmed} was not found in the tenant named {}.",
                identity.tenant
            ));
        }
        None => ResolvedResource {
            audience: trimmed.to_string(),
            version: 2,
        },
    };
    let now = shared.now().unix_timestamp();
    let lifetime = directory.settings().token_lifetime_secs as i64;
    let origin = shared.https_origin.get().cloned().unwrap_or_default();
    let token = tokens::app_token(
        &shared.signing_key(Ring::Tokens),
        &AppTokenRequest {
            tenant_id: &identity.tenant,
            client_id: &identity.client_id,
            object_id: &identity.object_id,
            roles: &identity.roles,
            audience: &resolved.audience,
            version: resolved.version,
            auth: ClientAuthMethod::Assertion,
            now,
            lifetime_secs: lifetime,
            origin: &origin,
            capabilities: &[],
            mi_resource_id: Some(&identity.resource_id),
        },
    );
    Ok((token, now, lifetime))
}

fn header_is(headers: &HeaderMap, name: &str, expected: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(expected))
}

/// `GET /metadata/identity/oauth2/token`.
pub(crate) async fn imds(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    // Without `Metadata: true` IMDS answers at once; SDK availability probes rely on that.
    if !header_is(&headers, "metadata", "true") {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    imds_token(&shared, &query)
}

/// The IMDS-shaped token answer shared by IMDS and Azure Arc: resource, identity selection,
/// minting, and IMDS-shaped errors.
fn imds_token(shared: &Shared, query: &[(String, String)]) -> Response {
    let Some(resource) = param(query, &["resource"]) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let directory = shared.directory();
    let identity = match select_from_query(&directory, query) {
        Ok(identity) => identity,
        Err(message) => return imds_error(StatusCode::BAD_REQUEST, "invalid_request", message),
    };
    match mint(shared, identity, resource) {
        Ok((token, now, lifetime)) => imds_body(identity, resource, token, now, lifetime),
        Err(message) => imds_error(StatusCode::BAD_REQUEST, "invalid_resource", &message),
    }
}

/// Formats an epoch as the legacy App Service date (`MM/dd/yyyy HH:mm:ss +00:00`).
fn legacy_date(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month]/[day]/[year] [hour]:[minute]:[second] +00:00"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// `GET /msi/token` (App Service, Functions, Container Apps).
pub(crate) async fn app_service(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let expected = shared
        .directory()
        .settings()
        .app_service_identity_header
        .clone();
    let legacy = headers.contains_key("secret") && !headers.contains_key("x-identity-header");
    let header_name = if legacy {
        "secret"
    } else {
        "x-identity-header"
    };
    let presented = headers
        .get(header_name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if presented != expected {
        return app_service_error(
            StatusCode::UNAUTHORIZED,
            &format!("The {header_name} header is missing or does not match IDENTITY_HEADER."),
        );
    }
    let Some(resource) = param(&query, &["resource"]) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The 'resource' query parameter is required.",
        );
    };
    let selector = if let Some(id) = param(&query, &["client_id", "clientid"]) {
        Selector::ClientId(id)
    } else if let Some(id) = param(&query, &["principal_id", "object_id"]) {
        Selector::ObjectId(id)
    } else if let Some(id) = param(&query, &["mi_res_id"]) {
        Selector::ResourceId(id)
    } else {
        Selector::System
    };
    let directory = shared.directory();
    let Some(identity) = select(&directory, &selector) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "No managed identity matches the request; check client_id, principal_id or mi_res_id.",
        );
    };
    match mint(&shared, identity, resource) {
        Ok((token, now, lifetime)) => {
            let expires_on: Value = if legacy {
                json!(legacy_date(now + lifetime))
            } else {
                json!((now + lifetime).to_string())
            };
            Json(json!({
                "access_token": token,
                "expires_on": expires_on,
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }))
            .into_response()
        }
        Err(message) => app_service_error(StatusCode::BAD_REQUEST, &message),
    }
}

/// The identity an IMDS-style query selects (`client_id`, `object_id`, `msi_res_id` /
/// `mi_res_id`), or an error message.
fn select_from_query<'d>(
    directory: &'d Directory,
    query: &[(String, String)],
) -> Result<&'d ManagedIdentity, &'static str> {
    let selectors: Vec<Selector<'_>> = [
        param(query, &["client_id", "clientid"]).map(Selector::ClientId),
        param(query, &["object_id", "principal_id"]).map(Selector::ObjectId),
        param(query, &["msi_res_id", "mi_res_id"]).map(Selector::ResourceId),
    ]
    .into_iter()
    .flatten()
    .collect();
    let selector = match selectors.len() {
        0 => Selector::System,
        1 => selectors.into_iter().next().unwrap_or(Selector::System),
        _ => return Err("Multiple identity selectors were specified; use only one"),
    };
    select(directory, &selector).ok_or("Identity not found")
}

/// The IMDS-style success body, every value a string.
fn imds_body(
    identity: &ManagedIdentity,
    resource: &str,
    token: String,
    now: i64,
    lifetime: i64,
) -> Response {
    Json(json!({
        "access_token": token,
        "client_id": identity.client_id,
        "expires_in": lifetime.to_string(),
        "expires_on": (now + lifetime).to_string(),
        "ext_expires_in": lifetime.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// `GET /arc/metadata/identity/oauth2/token`: the Azure Arc agent's challenge flow. Without
/// credentials it writes a secret to `<dir>/<guid>.key` and answers 401 with
/// `WWW-Authenticate: Basic realm=<that path>`; the client retries with
/// `Authorization: Basic <file contents>`.
pub(crate) async fn arc(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if !header_is(&headers, "metadata", "true") {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let Some(presented) = presented else {
        return arc_challenge(&shared);
    };
    if !shared.arc_secrets.accepts(presented.trim()) {
        return imds_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "The secret in the Authorization header does not match a challenge file",
        );
    }
    imds_token(&shared, &query)
}

fn arc_challenge(shared: &Shared) -> Response {
    let dir = shared.arc_key_directory();
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let path = dir.join(format!("{}.key", uuid::Uuid::new_v4()));
    if let Err(e) = crate::pki::write_atomic(&path, secret.as_bytes(), true) {
        return imds_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            &format!(
                "the emulator could not write the challenge file in {}: {e}",
                dir.display()
            ),
        );
    }
    shared.arc_secrets.issue(secret);
    let mut response = imds_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authorization required: read the file named in WWW-Authenticate",
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&format!("Basic realm={}", path.display()))
    {
        response.headers_mut().insert("www-authenticate", value);
    }
    response
}

/// `POST /oauth2/token`: Cloud Shell (`Metadata: true`, form `resource`). Tokens are the signed-in
/// user's.
pub(crate) async fn cloud_shell(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let error = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response()
    };
    if !header_is(&headers, "metadata", "true") {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Required metadata header not specified",
        );
    }
    let Ok(form) = crate::form::parse(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The body is not a valid form",
        );
    };
    let Some(resource) = crate::form::get(&form, "resource").filter(|r| !r.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The 'resource' form field is required",
        );
    };
    let directory = shared.directory();
    let Some(user) = directory.seed.users.first() else {
        return error(
            StatusCode::BAD_REQUEST,
            "NoUser",
            "The emulator's seed defines no user for Cloud Shell",
        );
    };
    let trimmed = resource.trim_end_matches('/');
    let resolved = directory
        .resource(&user.tenant, trimmed)
        .unwrap_or(ResolvedResource {
            audience: trimmed.to_string(),
            version: 2,
        });
    let now = shared.now().unix_timestamp();
    let lifetime = directory.settings().token_lifetime_secs as i64;
    let origin = shared.https_origin.get().cloned().unwrap_or_default();
    let token = tokens::user_token(
        &shared.signing_key(Ring::Tokens),
        user,
        &resolved.audience,
        resolved.version,
        now,
        lifetime,
        &origin,
    );
    Json(json!({
        "access_token": token,
        "refresh_token": "",
        "expires_in": lifetime.to_string(),
        "expires_on": (now + lifetime).to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}

/// `GET /azureml/msi/token`: Azure ML compute (api-version 2017-09-01, `secret` header,
/// `clientid`).
pub(crate) async fn azure_ml(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let expected = shared
        .directory()
        .settings()
        .managed_identity_secret
        .clone();
    let presented = headers
        .get("secret")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if presented != expected {
        return app_service_error(
            StatusCode::UNAUTHORIZED,
            "The secret header is missing or does not match MSI_SECRET.",
        );
    }
    let Some(resource) = param(&query, &["resource"]) else {
        return app_service_error(
            StatusCode::BAD_REQUEST,
            "The 'resource' query parameter is required.",
        );
    };
    let directory = shared.directory();
    let identity = match select_from_query(&directory, &query) {
        Ok(identity) => identity,
        Err(message) => return app_service_error(StatusCode::BAD_REQUEST, message),
    };
    match mint(&shared, identity, resource) {
        Ok((token, now, lifetime)) => Json(json!({
            "access_token": token,
            "expires_in": lifetime.to_string(),
            "expires_on": (now + lifetime).to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }))
        .into_response(),
        Err(message) => app_service_error(StatusCode::BAD_REQUEST, &message),
    }
}

/// A Service Fabric-shaped error: `{"error": {"correlationId", "code", "message"}}`.
fn service_fabric_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": {
            "correlationId": uuid::Uuid::new_v4().to_string(),
            "code": code,
            "message": message,
        }})),
    )
        .into_response()
}

/// `GET /metadata/identity/oauth2/token` on the Service Fabric listener (api-version
/// 2019-07-01-preview, `secret` header). `expires_on` is a number here.
pub(crate) async fn service_fabric(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let expected = shared
        .directory()
        .settings()
        .managed_identity_secret
        .clone();
    match headers.get("secret").and_then(|v| v.to_str().ok()) {
        None => {
            return service_fabric_error(
                StatusCode::UNAUTHORIZED,
                "SecretHeaderNotFound",
                "Secret is not found in the request headers.",
            );
        }
        Some(s) if s != expected => {
            return service_fabric_error(
                StatusCode::UNAUTHORIZED,
                "SecretHeaderNotFound",
                "The secret does not match IDENTITY_HEADER.",
            );
        }
        Some(_) => {}
    }
    let Some(resource) = param(&query, &["resource"]) else {
        return service_fabric_error(
            StatusCode::BAD_REQUEST,
            "ArgumentNullOrEmpty",
            "Value cannot be null. Parameter name: resource",
        );
    };
    let directory = shared.directory();
    let identity = match select_from_query(&directory, &query) {
        Ok(identity) => identity,
        Err(message) => {
            return service_fabric_error(
                StatusCode::BAD_REQUEST,
                "ManagedIdentityNotFound",
                message,
            );
        }
    };
    match mint(&shared, identity, resource) {
        Ok((token, now, lifetime)) => Json(json!({
            "token_type": "Bearer",
            "access_token": token,
            "expires_on": now + lifetime,
            "resource": resource,
        }))
        .into_response(),
        Err(message) => service_fabric_error(StatusCode::BAD_REQUEST, "InvalidResource", &message),
    }
}
