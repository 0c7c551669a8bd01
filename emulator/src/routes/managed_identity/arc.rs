//! Azure Arc: `GET /arc/metadata/identity/oauth2/token`, the agent's challenge flow. Without
//! credentials it writes a secret to `<dir>/<guid>.key` and answers 401 with
//! `WWW-Authenticate: Basic realm=<that path>`; the client retries with
//! `Authorization: Basic <file contents>`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::header_is;
use crate::state::Shared;
use crate::wire::ArcError;

/// `GET /arc/metadata/identity/oauth2/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if !header_is(&headers, "metadata", "true") {
        return ArcError::missing_metadata_header().into_response();
    }
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let Some(presented) = presented else {
        return challenge(&shared).into_response();
    };
    if !shared.arc_secrets.accepts(presented.trim()) {
        return ArcError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "The secret in the Authorization header does not match a challenge file",
        )
        .into_response();
    }
    super::imds::answer(&shared, &query).unwrap_or_else(IntoResponse::into_response)
}

/// Writes a challenge file and answers 401 naming it.
fn challenge(shared: &Shared) -> ArcError {
    let dir = shared.arc_key_directory();
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let path = dir.join(format!("{}.key", uuid::Uuid::new_v4()));
    if let Err(e) = crate::pki::write_atomic(&path, secret.as_bytes(), true) {
        return ArcError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!(
                "the emulator could not write the challenge file in {}: {e}",
                dir.display()
            ),
        );
    }
    shared.arc_secrets.issue(secret);
    ArcError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authorization required: read the file named in WWW-Authenticate",
    )
    .with_challenge(&path.display().to_string())
}
