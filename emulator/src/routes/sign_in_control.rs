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
use crate::config::User;
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
