//! Wire error shapes: one type per shape a real host answers errors in, each rendering itself
//! (`IntoResponse`). Handlers and fault injection use the same types, so an injected status on
//! a host looks like that host's own errors.
//!
//! | host | type | body |
//! |---|---|---|
//! | Entra (token, discovery, JWKS) | [`EntraError`] | `{"error", "error_description": "AADSTSnnnn: …", "error_codes", "timestamp", "trace_id", "correlation_id", "error_uri"}` |
//! | IMDS and Azure Arc | [`ImdsError`] | `{"error", "error_description"}` |
//! | App Service and Azure ML | [`AppServiceError`] | `{"statusCode", "message", "correlationId"}` |
//! | Service Fabric | [`ServiceFabricError`] | `{"error": {"correlationId", "code", "message"}}` |
//! | Cloud Shell | [`CloudShellError`] | `{"error": {"code", "message"}}` |
//! | Key Vault | [`KeyVaultError`] | `{"error": {"code", "message", "innererror"?}}`, with `WWW-Authenticate` on 401 |
//! | Resource Manager | [`KeyVaultError`] (the same shape) | `{"error": {"code", "message"}}`, with `WWW-Authenticate` on 401 |
//! | Azure DevOps (Pipelines OIDC) | [`DevOpsError`] | `{"$id", "innerException", "message", "typeName", "typeKey", "errorCode", "eventId"}` |
//! | the emulator's control plane | [`ControlError`] | `{"error", "message"}` |

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use crate::faults::Endpoint;

mod app_service;
mod cloud_shell;
mod control;
mod devops;
pub mod entra;
mod imds;
mod key_vault;
mod service_fabric;

pub use app_service::{AppServiceError, AzureMlError};
pub use cloud_shell::CloudShellError;
pub use control::ControlError;
pub use devops::DevOpsError;
pub(crate) use devops::add_diagnostic_headers;
pub use entra::{AADSTS, Aadsts, EntraError, ErrorSpec};
pub use imds::{ArcError, ImdsError};
pub use key_vault::KeyVaultError;
pub use service_fabric::ServiceFabricError;

/// What a host says for a status that has no more specific cause: an injected fault, or a
/// request the framework rejected before the handler ran (`detail` then says why).
pub(crate) trait HostError: IntoResponse + Sized {
    /// The host's error for `status`.
    fn for_status(status: StatusCode, detail: Option<&str>, now: OffsetDateTime) -> Self;
}

/// The error `endpoint`'s host answers `status` with, in that host's shape.
pub(crate) fn host_error(
    endpoint: Endpoint,
    status: StatusCode,
    detail: Option<&str>,
    now: OffsetDateTime,
) -> Response {
    fn render<E: HostError>(
        status: StatusCode,
        detail: Option<&str>,
        now: OffsetDateTime,
    ) -> Response {
        E::for_status(status, detail, now).into_response()
    }
    match endpoint {
        Endpoint::Token
        | Endpoint::Discovery
        | Endpoint::Jwks
        | Endpoint::Authorize
        | Endpoint::DeviceCode => render::<EntraError>(status, detail, now),
        Endpoint::Imds | Endpoint::Arc => render::<ImdsError>(status, detail, now),
        Endpoint::AppService | Endpoint::AzureMl => render::<AppServiceError>(status, detail, now),
        Endpoint::ServiceFabric => render::<ServiceFabricError>(status, detail, now),
        Endpoint::CloudShell => render::<CloudShellError>(status, detail, now),
        Endpoint::Pipelines => render::<DevOpsError>(status, detail, now),
        Endpoint::KeyVault => render::<KeyVaultError>(status, detail, now),
        Endpoint::Arm => render::<KeyVaultError>(status, detail, now),
    }
}

impl HostError for EntraError {
    fn for_status(status: StatusCode, detail: Option<&str>, now: OffsetDateTime) -> Self {
        let transient = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        let error = match detail {
            Some(detail) => Aadsts::Malformed {
                detail: detail.to_string(),
            },
            None if transient => Aadsts::TemporarilyUnavailable,
            None => Aadsts::Malformed {
                detail: format!("the emulator answered {} (injected fault)", status.as_u16()),
            },
        };
        EntraError::from(error).at(now).with_status(status)
    }
}

/// The `code` and message hosts with `{"code", "message"}` errors answer a bare status with;
/// `service` names the host in the messages.
fn coded_status(status: StatusCode, service: &str) -> (&'static str, String) {
    match status.as_u16() {
        429 => (
            "TooManyRequests",
            "Too many requests; retry later.".to_string(),
        ),
        s if s >= 500 => (
            "InternalServerError",
            format!("{service} failed; retry later."),
        ),
        404 => (
            "NotFound",
            format!("{service} is not available; retry later."),
        ),
        _ => (
            "BadRequest",
            "The request was rejected (injected fault).".to_string(),
        ),
    }
}

/// A random correlation id, as the hosts put in their error bodies.
fn correlation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
