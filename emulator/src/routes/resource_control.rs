//! The control plane's resource calls: revoke a principal for continuous access evaluation
//! (`POST /_emulator/revoke`), list the revocations, and list the Key Vaults.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::assertion::format_time;
use crate::state::Shared;
use crate::wire::ControlError;

/// The routes, nested under `/_emulator`.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/revoke", post(revoke))
        .route("/key-vaults", get(key_vaults))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    /// A user's UPN or object id, or an application's or managed identity's client or object id.
    subject: String,
}

/// The kind of principal a subject names, and every identifier its tokens may carry.
fn resolve(shared: &Shared, subject: &str) -> Option<(&'static str, Vec<String>)> {
    let directory = shared.directory();
    let subject = subject.trim();
    if let Some(user) = directory.user(subject) {
        let mut ids = vec![user.object_id.clone(), user.user_principal_name.clone()];
        ids.extend(
            user.guest_in
                .iter()
                .map(|t| crate::tokens::user_object_id(user, t)),
        );
        return Some(("user", ids));
    }
    let is = |id: &str| id.eq_ignore_ascii_case(subject);
    let seed = &directory.seed;
    let app = seed.applications.iter().find_map(|a| {
        let entry = directory.app(&a.tenant, &a.client_id)?;
        (is(&entry.client_id) || is(&entry.object_id)).then_some(entry)
    });
    if let Some(app) = app {
        return Some((
            "application",
            vec![app.client_id.clone(), app.object_id.clone()],
        ));
    }
    seed.managed_identities
        .iter()
        .find(|m| is(&m.client_id) || is(&m.object_id) || is(&m.resource_id))
        .map(|m| {
            (
                "managed_identity",
                vec![m.client_id.clone(), m.object_id.clone()],
            )
        })
}

/// A revocation that took effect.
pub(crate) struct Revoked {
    pub(crate) kind: &'static str,
    pub(crate) ids: Vec<String>,
    pub(crate) at: i64,
}

/// Revokes a principal: its CAE tokens issued up to now are refused by resources with a
/// claims challenge; a user's sessions and refresh tokens end too. `None` for an unknown
/// subject.
pub(crate) fn revoke_subject(s: &Shared, subject: &str) -> Option<Revoked> {
    let (kind, ids) = resolve(s, subject)?;
    let now = s.now().unix_timestamp();
    s.revocations.revoke(&ids, now);
    if kind == "user" {
        s.sign_in.revoke(&ids[0], now);
    }
    Some(Revoked { kind, ids, at: now })
}

async fn revoke(
    State(s): State<Arc<Shared>>,
    Json(request): Json<RevokeRequest>,
) -> Result<Response, ControlError> {
    let Revoked { kind, ids, at: now } =
        revoke_subject(&s, &request.subject).ok_or_else(|| {
            ControlError::not_found(format!(
                "no seeded user, application or managed identity is '{}': give a user's UPN or object id, or a client id or object id",
                request.subject
            ))
        })?;
    Ok(Json(json!({
        "subject": request.subject,
        "kind": kind,
        "ids": ids,
        "revoked_at": format_time(now),
        "revoked_at_epoch": now,
    }))
    .into_response())
}

async fn key_vaults(State(s): State<Arc<Shared>>) -> Response {
    let vaults: Vec<_> = s
        .directory()
        .seed
        .key_vaults
        .iter()
        .map(|v| {
            let url = s.key_vault_urls.get().and_then(|urls| urls.get(&v.name));
            json!({ "name": v.name, "url": url, "tenant": v.tenant, "role_assignments": v.role_assignments })
        })
        .collect();
    Json(json!({ "key_vaults": vaults })).into_response()
}
