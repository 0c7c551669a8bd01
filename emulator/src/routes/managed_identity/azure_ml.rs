//! Azure Machine Learning compute: `GET /azureml/msi/token` (api-version 2017-09-01, `secret`
//! header, `clientid`), in App Service's protocol and error shape.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{mint, param, select_from_query};
use crate::state::Shared;
use crate::wire::AzureMlError;

/// `GET /azureml/msi/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    answer(&shared, &query, &headers).unwrap_or_else(IntoResponse::into_response)
}

fn answer(
    shared: &Shared,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Response, AzureMlError> {
    let bad = |message: &str| AzureMlError::new(StatusCode::BAD_REQUEST, message);
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
        return Err(AzureMlError::new(
            StatusCode::UNAUTHORIZED,
            "The secret header is missing or does not match MSI_SECRET.",
        ));
    }
    let resource = param(query, &["resource"])
        .ok_or_else(|| bad("The 'resource' query parameter is required."))?;
    let directory = shared.directory();
    let identity = select_from_query(&directory, query).map_err(bad)?;
    let minted = mint(shared, identity, resource, query).map_err(|m| bad(&m))?;
    Ok(Json(json!({
        "access_token": minted.token,
        "expires_in": minted.lifetime.to_string(),
        "expires_on": minted.expires_on().to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }))
    .into_response())
}
