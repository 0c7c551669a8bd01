//! The control plane's sign-in calls: approve or decline a device code for tests that have no
//! browser, list pending device codes, and revoke a user's sessions.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::sign_in::approve_device_code;
use crate::assertion::format_time;
use crate::config::{SignInSettings, User};
use crate::sign_in::store::DecideError;
use crate::state::Shared;
use crate::wire::ControlError;

type Result<T> = std::result::Result<T, ControlError>;

/// The routes, nested under `/_emulator`.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/device-codes", get(pending))
        .route("/device-codes/approve", post(approve))
        .route("/device-codes/decline", post(decline))
        .route("/users/{user}/revoke-sessions", post(revoke))
        .route(
            "/sign-in",
            axum::routing::get(sign_in_settings).put(set_sign_in_settings),
        )
        .route("/tokens/user", post(mint_user_token))
}

async fn sign_in_settings(State(s): State<Arc<Shared>>) -> Response {
    Json(s.directory().seed.sign_in.clone()).into_response()
}

async fn set_sign_in_settings(
    State(s): State<Arc<Shared>>,
    Json(settings): Json<SignInSettings>,
) -> Result<Response> {
    s.edit_seed(|seed| {
        seed.sign_in = settings.clone();
        Ok(())
    })
    .map_err(|e| ControlError::bad_request(e.to_string()))?;
    Ok(Json(settings).into_response())
}

/// `POST /tokens/user`: a user's access token, as a sign-in would issue it (for on-behalf-of
/// tests and resource tests that need a user token without a sign-in).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserTokenMint {
    /// UPN or object id.
    user: String,
    /// The scope (its resource is the audience), e.g. `api://entra-emulator-api/.default`.
    scope: String,
    /// The client the user signed in to; default the developer tools' public client.
    #[serde(default)]
    client_id: Option<String>,
    /// The tenant; default the user's home tenant.
    #[serde(default)]
    tenant: Option<String>,
    /// Seconds until it expires (negative: already expired); default the seed's lifetime.
    #[serde(default)]
    expires_in_secs: Option<i64>,
    /// Also write it to this file, inside the state directory.
    #[serde(default)]
    file: Option<String>,
}

/// The widest expiry the control plane mints a user token with (a year either way).
const MAX_EXPIRY_SECS: i64 = 366 * 24 * 3600;

async fn mint_user_token(
    State(s): State<Arc<Shared>>,
    Json(req): Json<UserTokenMint>,
) -> Result<Response> {
    let user = seeded_user(&s, &req.user)?;
    let tenant = req.tenant.clone().unwrap_or_else(|| user.tenant.clone());
    if !user.member_of(&tenant) {
        return Err(ControlError::bad_request(format!(
            "{} is not a member of or guest in tenant '{tenant}'",
            user.user_principal_name
        )));
    }
    let expires_in = req
        .expires_in_secs
        .unwrap_or(s.directory().settings().token_lifetime_secs as i64);
    if !(-MAX_EXPIRY_SECS..=MAX_EXPIRY_SECS).contains(&expires_in) || expires_in == 0 {
        return Err(ControlError::bad_request(format!(
            "expires_in_secs {expires_in} is out of range; use -{MAX_EXPIRY_SECS} to {MAX_EXPIRY_SECS}, not 0"
        )));
    }
    let token = user_token(&s, &req, &user, &tenant, expires_in);
    if let Some(file) = &req.file {
        let path = super::control::inside_state_dir(&s.state_dir, file)?;
        crate::pki::write_atomic(&path, token.as_bytes(), true)
            .map_err(|e| ControlError::bad_request(format!("writing '{file}': {e}")))?;
    }
    Ok(Json(json!({ "access_token": token, "file": req.file })).into_response())
}

/// The user token a mint request describes; an expired one was issued an hour before it expired.
fn user_token(
    s: &Shared,
    req: &UserTokenMint,
    user: &User,
    tenant: &str,
    expires_in: i64,
) -> String {
    let directory = s.directory();
    let (resource, scp) = crate::grants::user::resource_and_permissions(&req.scope);
    let resolved =
        directory
            .resource(tenant, &resource)
            .unwrap_or(crate::directory::ResolvedResource {
                audience: resource.clone(),
                version: 2,
            });
    let now = s.now().unix_timestamp();
    let (issued, lifetime) = if expires_in > 0 {
        (now, expires_in)
    } else {
        (now + expires_in - 3600, 3600)
    };
    let origin = s.https_origin.get().cloned().unwrap_or_default();
    let client_id = req
        .client_id
        .clone()
        .unwrap_or_else(|| crate::tokens::AZURE_CLI_CLIENT_ID.to_string());
    crate::tokens::user_token(
        &s.signing_key(crate::state::Ring::Tokens),
        &crate::tokens::UserTokenRequest {
            user,
            tenant_id: tenant,
            client_id: &client_id,
            client_acr: "0",
            audience: &resolved.audience,
            version: resolved.version,
            scp: &scp,
            now: issued,
            lifetime_secs: lifetime,
            origin: &origin,
            capabilities: &[],
        },
    )
}

/// `POST /device-codes/approve` and `/decline`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    user_code: String,
    /// The approving user (UPN or object id); approval only.
    #[serde(default)]
    user: Option<String>,
}

fn seeded_user(shared: &Shared, who: &str) -> Result<User> {
    shared.directory().user(who).cloned().ok_or_else(|| {
        ControlError::not_found(format!("no seeded user has the UPN or object id '{who}'"))
    })
}

fn decide_error(e: DecideError, user_code: &str) -> ControlError {
    let (status, code, message) = match e {
        DecideError::Unknown => (
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no device code has the user code '{user_code}'; GET /_emulator/device-codes lists the pending ones"
            ),
        ),
        DecideError::Expired => (
            StatusCode::GONE,
            "expired",
            format!("the device code '{user_code}' has expired; the client must start again"),
        ),
        DecideError::Decided => (
            StatusCode::CONFLICT,
            "decided",
            format!("the device code '{user_code}' was already approved or declined"),
        ),
    };
    ControlError {
        status,
        code,
        message,
    }
}

async fn approve(State(s): State<Arc<Shared>>, Json(d): Json<Decision>) -> Result<Response> {
    let who = d.user.as_deref().ok_or_else(|| {
        ControlError::bad_request("approve needs \"user\": the UPN or object id of a seeded user")
    })?;
    let user = seeded_user(&s, who)?;
    let now = s.now().unix_timestamp();
    let directory = s.directory();
    if let Err(e) = s.sign_in.pending_device_code(&d.user_code, now) {
        return Err(decide_error(e, &d.user_code));
    }
    approve_device_code(&s, &directory, &d.user_code, &user, now)
        .map_err(|e| ControlError::bad_request(e.to_string()))?;
    Ok(Json(json!({
        "user_code": d.user_code,
        "status": "approved",
        "user": user.user_principal_name,
    }))
    .into_response())
}

async fn decline(State(s): State<Arc<Shared>>, Json(d): Json<Decision>) -> Result<Response> {
    let now = s.now().unix_timestamp();
    s.sign_in
        .decide(&d.user_code, None, now)
        .map_err(|e| decide_error(e, &d.user_code))?;
    Ok(Json(json!({ "user_code": d.user_code, "status": "declined" })).into_response())
}

async fn pending(State(s): State<Arc<Shared>>) -> Response {
    let now = s.now().unix_timestamp();
    let codes: Vec<_> = s
        .sign_in
        .pending_device_codes(now)
        .into_iter()
        .map(|d| {
            json!({
                "user_code": d.user_code,
                "client_id": d.client_id,
                "tenant": d.tenant,
                "scope": d.scope,
                "expires_on": format_time(d.expires),
            })
        })
        .collect();
    Json(json!({ "device_codes": codes })).into_response()
}

async fn revoke(State(s): State<Arc<Shared>>, Path(who): Path<String>) -> Result<Response> {
    let user = seeded_user(&s, &who)?;
    let now = s.now().unix_timestamp();
    let generation = s.sign_in.revoke(&user.object_id, now);
    Ok(Json(json!({
        "user": user.user_principal_name,
        "object_id": user.object_id,
        "revoked_at": format_time(now),
        "generation": generation,
    }))
    .into_response())
}
