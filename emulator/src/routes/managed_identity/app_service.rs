//! App Service, Functions and Container Apps: `GET /msi/token`, api-version 2019-08-01
//! (`X-IDENTITY-HEADER`) and the legacy 2017-09-01 form (`secret`, a formatted date).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Selector, mint, param, select};
use crate::state::Shared;
use crate::wire::AppServiceError;

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

/// App Service's selectors: one of `client_id`, `principal_id`, `mi_res_id`, or none.
fn selector(query: &[(String, String)]) -> Selector<'_> {
    if let Some(id) = param(query, &["client_id", "clientid"]) {
        Selector::ClientId(id)
    } else if let Some(id) = param(query, &["principal_id", "object_id"]) {
        Selector::ObjectId(id)
    } else if let Some(id) = param(query, &["mi_res_id"]) {
        Selector::ResourceId(id)
    } else {
        Selector::System
    }
}

/// Checks the identity header; `Ok(legacy)` says which protocol the client speaks.
fn check_header(shared: &Shared, headers: &HeaderMap) -> Result<bool, AppServiceError> {
    let expected = shared
        .directory()
        .settings()
        .app_service_identity_header
        .clone();
    let legacy = headers.contains_key("secret") && !headers.contains_key("x-identity-header");
    let name = if legacy {
        "secret"
    } else {
        "x-identity-header"
    };
    let presented = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if presented != expected {
        return Err(AppServiceError::new(
            StatusCode::UNAUTHORIZED,
            format!("The {name} header is missing or does not match IDENTITY_HEADER."),
        ));
    }
    Ok(legacy)
}

/// `GET /msi/token`.
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
) -> Result<Response, AppServiceError> {
    let bad = |message: &str| AppServiceError::new(StatusCode::BAD_REQUEST, message);
    let legacy = check_header(shared, headers)?;
    let resource = param(query, &["resource"])
        .ok_or_else(|| bad("The 'resource' query parameter is required."))?;
    let directory = shared.directory();
    let identity = select(&directory, &selector(query)).ok_or_else(|| {
        bad("No managed identity matches the request; check client_id, principal_id or mi_res_id.")
    })?;
    let minted = mint(shared, identity, resource, query).map_err(|m| bad(&m))?;
    let expires_on: Value = if legacy {
        json!(legacy_date(minted.expires_on()))
    } else {
        json!(minted.expires_on().to_string())
    };
    Ok(Json(json!({
        "access_token": minted.token,
        "expires_on": expires_on,
        "resource": resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }))
    .into_response())
}
