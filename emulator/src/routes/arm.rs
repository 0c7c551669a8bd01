//! Azure Resource Manager, the part sign-in tools call, on its own HTTPS listener:
//! `GET /tenants`, `GET /subscriptions`, `GET /subscriptions/{id}` (token-checked like ARM:
//! any seeded tenant's token for `https://management.core.windows.net/` or
//! `https://management.azure.com/`), and `GET /metadata/endpoints` (public).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;

use super::key_vault::{ResourceNote, admit, authorization, query_param};
use super::{Origin, Route, observe, tagged};
use crate::assertion::format_time;
use crate::faults::Endpoint;
use crate::resources::access::{self, Caller, Rejection, Requirements};
use crate::resources::arm;
use crate::state::Shared;
use crate::wire::KeyVaultError as ArmError;

/// The router of the Resource Manager listener.
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    let t = |route: Route| {
        tagged(
            &shared,
            Endpoint::Arm,
            route.layer(middleware::from_fn_with_state(shared.clone(), authenticate)),
        )
    };
    Router::new()
        .route("/tenants", t(get(tenants)))
        .route("/subscriptions", t(get(subscriptions)))
        .route("/subscriptions/{id}", t(get(subscription)))
        .route(
            "/metadata/endpoints",
            tagged(&shared, Endpoint::Arm, get(metadata)),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .layer(Extension(Origin::default()))
        .with_state(shared)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!(
            "The emulator's Resource Manager serves tenants, subscriptions and metadata/endpoints, not '{}'.",
            uri.path()
        ),
    )
    .into_response()
}

/// The `api-version` of a query, or ARM's 400 without one.
fn api_version(query: Option<&str>) -> Result<String, ArmError> {
    query_param(query, "api-version")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ArmError::new(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        })
}

/// Checks the bearer token as ARM does, then the `api-version`; the caller goes on as an
/// extension.
async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let requirements = Requirements {
        tenant_id: None,
        audiences: &arm::AUDIENCES,
    };
    let note = ResourceNote {
        resource: "arm".into(),
        ..ResourceNote::default()
    };
    let checked = match access::authenticate(&shared, authorization(&request), &requirements) {
        Err(rejection) => Err((
            unauthorized(&rejection).into_response(),
            Some(rejection.check().to_string()),
        )),
        Ok(caller) => match api_version(request.uri().query()) {
            Ok(_) => Ok(caller),
            Err(e) => Err((e.into_response(), None)),
        },
    };
    admit(note, checked, request, next).await
}

/// ARM's 401s: its codes and messages, and its challenge.
fn unauthorized(rejection: &Rejection) -> ArmError {
    let (code, message) = match rejection {
        Rejection::Missing => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_string(),
        ),
        Rejection::Malformed | Rejection::Signature { .. } => (
            "InvalidAuthenticationToken",
            "The access token is invalid.".to_string(),
        ),
        Rejection::Expired { expires } => (
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time.",
                format_time(*expires)
            ),
        ),
        Rejection::NotYetValid { not_before } => (
            "InvalidAuthenticationToken",
            format!(
                "The access token is not valid before '{}'.",
                format_time(*not_before)
            ),
        ),
        Rejection::Audience { found, .. } => (
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{found}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."
            ),
        ),
        Rejection::Issuer { found, .. } => (
            "InvalidAuthenticationTokenTenant",
            format!("The access token is from the wrong issuer '{found}'."),
        ),
        Rejection::Revoked { revoked_at } => (
            "InvalidAuthenticationToken",
            format!(
                "The access token was revoked at {}; request a new token with the claims of the WWW-Authenticate challenge.",
                format_time(*revoked_at)
            ),
        ),
    };
    let challenge = match rejection {
        Rejection::Revoked { revoked_at } => {
            crate::resources::cae::challenge("https://login.windows.net/", *revoked_at)
        }
        _ => r#"Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="The access token is missing or invalid.""#.to_string(),
    };
    ArmError::new(StatusCode::UNAUTHORIZED, code, message).with_challenge(challenge)
}

async fn tenants(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Arc<Caller>>,
) -> Response {
    let value = arm::tenants_of(&s.directory().seed, &caller);
    Json(json!({ "value": value })).into_response()
}

async fn subscriptions(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Arc<Caller>>,
) -> Response {
    let directory = s.directory();
    let value: Vec<_> = arm::subscriptions_of(&directory.seed, &caller)
        .into_iter()
        .map(arm::subscription)
        .collect();
    let count = value.len();
    Json(json!({ "value": value, "count": { "type": "Total", "value": count } })).into_response()
}

async fn subscription(
    State(s): State<Arc<Shared>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(id): Path<String>,
) -> Result<Response, ArmError> {
    let directory = s.directory();
    arm::subscriptions_of(&directory.seed, &caller)
        .into_iter()
        .find(|sub| sub.id.eq_ignore_ascii_case(&id))
        .map(|sub| Json(arm::subscription(sub)).into_response())
        .ok_or_else(|| {
            ArmError::new(
                StatusCode::NOT_FOUND,
                "SubscriptionNotFound",
                format!("The subscription '{id}' could not be found."),
            )
        })
}

async fn metadata(
    State(s): State<Arc<Shared>>,
    transparent: Option<axum::Extension<super::Transparent>>,
    uri: axum::http::Uri,
) -> Result<Response, ArmError> {
    let version = api_version(uri.query())?;
    // Through transparent mode the emulator is Azure's public cloud, under Azure's names.
    let (login, arm_url) = if transparent.is_some() {
        (
            super::PUBLIC_AUTHORITY.to_string(),
            "https://management.azure.com".to_string(),
        )
    } else {
        (
            s.https_origin.get().cloned().unwrap_or_default(),
            s.arm_url.get().cloned().unwrap_or_default(),
        )
    };
    Ok(Json(arm::metadata(&version, &arm_url, &login)).into_response())
}
