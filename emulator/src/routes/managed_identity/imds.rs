//! Azure Instance Metadata Service: `GET /metadata/identity/oauth2/token` (with or without a
//! trailing slash). Every value in a response is a string, as IMDS sends them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{header_is, mint, param, select_from_query};
use crate::state::Shared;
use crate::wire::ImdsError;

/// `GET /metadata/identity/oauth2/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    // Without `Metadata: true` IMDS answers at once; SDK availability probes rely on that.
    if !header_is(&headers, "metadata", "true") {
        return ImdsError::missing_metadata_header().into_response();
    }
    answer(&shared, &query).unwrap_or_else(IntoResponse::into_response)
}

/// The IMDS-shaped token answer shared by IMDS and Azure Arc: resource, identity selection,
/// minting, and IMDS-shaped errors.
pub(super) fn answer(shared: &Shared, query: &[(String, String)]) -> Result<Response, ImdsError> {
    let bad = |error: &str, message: &str| ImdsError::new(StatusCode::BAD_REQUEST, error, message);
    let resource = param(query, &["resource"]).ok_or_else(|| {
        bad(
            "invalid_request",
            "Required query variable 'resource' is missing",
        )
    })?;
    let directory = shared.directory();
    let identity = select_from_query(&directory, query).map_err(|m| bad("invalid_request", m))?;
    let minted =
        mint(shared, identity, resource, query).map_err(|m| bad("invalid_resource", &m))?;
    Ok(Json(json!({
        "access_token": minted.token,
        "client_id": identity.client_id,
        "expires_in": minted.lifetime.to_string(),
        "expires_on": minted.expires_on().to_string(),
        "ext_expires_in": minted.lifetime.to_string(),
        "not_before": minted.now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response())
}
