//! The Azure Pipelines OIDC endpoint
//! (`POST {SYSTEM_OIDCREQUESTURI}?api-version=…&serviceConnectionId=…`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::{Ring, Shared};
use crate::tokens;
use crate::wire::{DevOpsError, add_diagnostic_headers};

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Issues an OIDC token for the service connection named in the query.
pub(crate) async fn oidc_token(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let suppress_redirect = headers
        .get("x-tfs-fedauthredirect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("suppress"));
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or("");
    let directory = shared.directory();
    let Some(connection_id) = param(&query, "serviceConnectionId") else {
        return DevOpsError::new(
            StatusCode::BAD_REQUEST,
            "ArgumentNullException",
            "Value cannot be null. Parameter name: serviceConnectionId",
        )
        .into_response();
    };
    let connection = directory.service_connection(connection_id);
    let authorized =
        connection.is_some_and(|c| !bearer.is_empty() && c.system_access_token == bearer);
    if !authorized && !suppress_redirect {
        let mut response = StatusCode::FOUND.into_response();
        let location = "https://spsprodwus22.vssps.visualstudio.com/_signin?realm=dev.azure.com&reply_to=https%3A%2F%2Fdev.azure.com%2F";
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static(location));
        add_diagnostic_headers(response.headers_mut());
        return response;
    }
    let Some(connection) = connection else {
        return DevOpsError::new(StatusCode::NOT_FOUND, "ServiceEndpointNotFoundException", format!(
                "Service connection '{connection_id}' was not found, or the pipeline is not authorized to use it."
            ),
        ).into_response();
    };
    if !authorized {
        return DevOpsError::new(
            StatusCode::UNAUTHORIZED,
            "VssUnauthorizedException",
            "TF400813: The user is not authorized to access this resource.",
        )
        .into_response();
    }
    if param(&query, "api-version").is_none() {
        return DevOpsError::new(StatusCode::BAD_REQUEST, "VssVersionNotSpecifiedException", "No api-version was supplied for the POST request. The version must be supplied either as part of the Accept header (e.g. \"application/json; api-version=1.0\") or as a query parameter (e.g. \"?api-version=1.0\").",
        ).into_response();
    }
    let key = shared.signing_key(Ring::Pipelines);
    let token = tokens::pipelines_token(&key, connection, shared.now().unix_timestamp());
    Json(json!({ "oidcToken": token })).into_response()
}
