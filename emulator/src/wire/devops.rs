//! Azure DevOps' error shape, with the diagnostic headers clients quote.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;

use super::HostError;

/// An Azure DevOps (Pipelines OIDC endpoint) error.
#[derive(Debug, Clone)]
pub struct DevOpsError {
    status: StatusCode,
    type_name: String,
    message: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    #[serde(rename = "$id")]
    id: &'a str,
    inner_exception: Option<()>,
    message: &'a str,
    type_name: String,
    type_key: &'a str,
    error_code: u32,
    event_id: u32,
}

impl DevOpsError {
    /// `status` with the .NET exception type Azure DevOps names (`ArgumentNullException`, …).
    pub fn new(status: StatusCode, type_name: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            type_name: type_name.to_string(),
            message: message.into(),
        }
    }
}

impl IntoResponse for DevOpsError {
    fn into_response(self) -> Response {
        let body = Body {
            id: "1",
            inner_exception: None,
            message: &self.message,
            type_name: format!(
                "Microsoft.TeamFoundation.DistributedTask.WebApi.{}, Microsoft.TeamFoundation.DistributedTask.WebApi",
                self.type_name
            ),
            type_key: &self.type_name,
            error_code: 0,
            event_id: 3000,
        };
        let mut response = (self.status, Json(body)).into_response();
        add_diagnostic_headers(response.headers_mut());
        response
    }
}

impl HostError for DevOpsError {
    fn for_status(status: StatusCode, detail: Option<&str>, _now: OffsetDateTime) -> Self {
        let message = match detail {
            Some(detail) => detail.to_string(),
            None => format!(
                "The service answered {} (injected fault). Try again later.",
                status.as_u16()
            ),
        };
        Self::new(status, "VssServiceException", message)
    }
}

/// Azure DevOps' diagnostic headers (`x-vss-e2eid`, `x-msedge-ref`, `activityid`).
pub(crate) fn add_diagnostic_headers(headers: &mut HeaderMap) {
    let e2e = uuid::Uuid::new_v4().to_string();
    let edge = format!(
        "Ref A: {} Ref B: EMU01 Ref C: emulator",
        uuid::Uuid::new_v4().simple()
    );
    for (name, value) in [
        ("x-vss-e2eid", e2e.clone()),
        ("x-msedge-ref", edge),
        ("activityid", e2e),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}
