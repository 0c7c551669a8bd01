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
    let Some(resource) = param(&query, &["resource"]) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let selectors: Vec<Selector<'_>> = [
        param(&query, &["client_id"]).map(Selector::ClientId),
        param(&query, &["object_id"]).map(Selector::ObjectId),
        param(&query, &["msi_res_id", "mi_res_id"]).map(Selector::ResourceId),
    ]
    .into_iter()
    .flatten()
    .collect();
    let selector = match selectors.len() {
        0 => Selector::System,
        1 => selectors.into_iter().next().unwrap_or(Selector::System),
        _ => {
            return imds_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Multiple identity selectors were specified; use one of client_id, object_id or msi_res_id",
            );
        }
    };
    let directory = shared.directory();
    let Some(identity) = select(&directory, &selector) else {
        return imds_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    match mint(&shared, identity, resource) {
        Ok((token, now, lifetime)) => Json(json!({
            "access_token": token,
            "client_id": identity.client_id,
            "expires_in": lifetime.to_string(),
            "expires_on": (now + lifetime).to_string(),
            "ext_expires_in": lifetime.to_string(),
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }))
        .into_response(),
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
