//! Service Fabric: `GET /metadata/identity/oauth2/token` on its own HTTPS listener
//! (api-version 2019-07-01-preview, `secret` header). `expires_on` is a number here.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{mint, param, select_from_query};
use crate::state::Shared;
use crate::wire::ServiceFabricError;

/// `GET /metadata/identity/oauth2/token` on the Service Fabric listener.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    answer(&shared, &query, &headers).unwrap_or_else(IntoResponse::into_response)
}

fn check_secret(shared: &Shared, headers: &HeaderMap) -> Result<(), ServiceFabricError> {
    let expected = shared
        .directory()
        .settings()
        .managed_identity_secret
        .clone();
    let unauthorized = |message: &str| {
        ServiceFabricError::new(StatusCode::UNAUTHORIZED, "SecretHeaderNotFound", message)
    };
    match headers.get("secret").and_then(|v| v.to_str().ok()) {
        None => Err(unauthorized("Secret is not found in the request headers.")),
        Some(s) if s != expected => Err(unauthorized("The secret does not match IDENTITY_HEADER.")),
        Some(_) => Ok(()),
    }
}

fn answer(
    shared: &Shared,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Response, ServiceFabricError> {
    let bad =
        |code: &str, message: &str| ServiceFabricError::new(StatusCode::BAD_REQUEST, code, message);
    check_secret(shared, headers)?;
    let resource = param(query, &["resource"]).ok_or_else(|| {
        bad(
            "ArgumentNullOrEmpty",
            "Value cannot be null. Parameter name: resource",
        )
    })?;
    let directory = shared.directory();
    let identity =
        select_from_query(&directory, query).map_err(|m| bad("ManagedIdentityNotFound", m))?;
    let minted = mint(shared, identity, resource, query).map_err(|m| bad("InvalidResource", &m))?;
    Ok(Json(json!({
        "token_type": "Bearer",
        "access_token": minted.token,
        "expires_on": minted.expires_on(),
        "resource": resource,
    }))
    .into_response())
}
