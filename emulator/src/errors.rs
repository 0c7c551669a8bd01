//! Entra-shaped errors: one data table of AADSTS codes and one response type that renders them.
//!
//! Handlers never build error JSON by hand: they pick a code from [`AADSTS`] and fill its
//! placeholders. The table is public so tests and other tools can enumerate it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;
use time::macros::format_description;

/// One row of the AADSTS table.
#[derive(Debug, Clone, Copy)]
pub struct ErrorSpec {
    /// The numeric AADSTS code.
    pub code: u32,
    /// The OAuth `error` value.
    pub error: &'static str,
    /// The HTTP status Entra answers with.
    pub status: u16,
    /// The message after `AADSTSnnnn: `; `{}` placeholders are filled in order.
    pub template: &'static str,
}

/// Every AADSTS code the emulator can return.
pub const AADSTS: &[ErrorSpec] = &[
    ErrorSpec {
        code: 90002,
        error: "invalid_request",
        status: 400,
        template: "Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.",
    },
    ErrorSpec {
        code: 900023,
        error: "invalid_request",
        status: 400,
        template: "Specified tenant identifier '{}' is neither a valid DNS name, nor a valid external domain.",
    },
    ErrorSpec {
        code: 700016,
        error: "unauthorized_client",
        status: 400,
        template: "Application with identifier '{}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
    },
    ErrorSpec {
        code: 7000215,
        error: "invalid_client",
        status: 401,
        template: "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
    },
    ErrorSpec {
        code: 7000222,
        error: "invalid_client",
        status: 401,
        template: "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
    },
    ErrorSpec {
        code: 7000218,
        error: "invalid_client",
        status: 401,
        template: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    },
    ErrorSpec {
        code: 50027,
        error: "invalid_request",
        status: 400,
        template: "JWT token is invalid or malformed. {}",
    },
    ErrorSpec {
        code: 50013,
        error: "invalid_client",
        status: 401,
        template: "Assertion failed signature validation. [Reason - {}, Thumbprint of key used by client: '{}', Found key 'Start=..., End=...', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
    },
    ErrorSpec {
        code: 700027,
        error: "invalid_client",
        status: 401,
        template: "Client assertion contains an invalid signature. [Reason - {}, Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/{}'].",
    },
    ErrorSpec {
        code: 700024,
        error: "invalid_client",
        status: 401,
        template: "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
    },
    ErrorSpec {
        code: 700021,
        error: "invalid_client",
        status: 401,
        template: "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
    },
    ErrorSpec {
        code: 700023,
        error: "invalid_client",
        status: 401,
        template: "Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
    },
    ErrorSpec {
        code: 700211,
        error: "invalid_request",
        status: 400,
        template: "No matching federated identity record found for presented assertion issuer '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
    },
    ErrorSpec {
        code: 700212,
        error: "invalid_request",
        status: 400,
        template: "No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
    },
    ErrorSpec {
        code: 700213,
        error: "invalid_request",
        status: 400,
        template: "No matching federated identity record found for presented assertion subject '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation Note: matching is done using a case-sensitive comparison.",
    },
    ErrorSpec {
        code: 700222,
        error: "invalid_request",
        status: 400,
        template: "AAD-issued tokens may not be used for federated identity flows.",
    },
    ErrorSpec {
        code: 1002012,
        error: "invalid_scope",
        status: 400,
        template: "The provided value for scope {} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
    },
    ErrorSpec {
        code: 70011,
        error: "invalid_scope",
        status: 400,
        template: "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {} is not valid.",
    },
    ErrorSpec {
        code: 500011,
        error: "invalid_resource",
        status: 400,
        template: "The resource principal named {} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
    },
    ErrorSpec {
        code: 70003,
        error: "unsupported_grant_type",
        status: 400,
        template: "The app requested an unsupported grant type '{}'.",
    },
    ErrorSpec {
        code: 900144,
        error: "invalid_request",
        status: 400,
        template: "The request body must contain the following parameter: '{}'.",
    },
    ErrorSpec {
        code: 50126,
        error: "invalid_grant",
        status: 400,
        template: "Error validating credentials due to invalid username or password.",
    },
    ErrorSpec {
        code: 9002313,
        error: "invalid_grant",
        status: 400,
        template: "Invalid request. Request is malformed or invalid. {}",
    },
    ErrorSpec {
        code: 700082,
        error: "invalid_grant",
        status: 400,
        template: "The refresh token has expired due to inactivity. The token was issued on {} and was inactive for 90.00:00:00.",
    },
    ErrorSpec {
        code: 90033,
        error: "temporarily_unavailable",
        status: 503,
        template: "A transient error has occurred. Please try again.",
    },
    ErrorSpec {
        code: 90004,
        error: "invalid_request",
        status: 400,
        template: "The request is not properly formatted: {}",
    },
    ErrorSpec {
        code: 90056,
        error: "invalid_request",
        status: 400,
        template: "The resource is disabled or does not exist. Check your app's code to ensure that you have specified the exact resource URL for the resource you are trying to access. Path: '{}'.",
    },
];

/// Looks a code up in [`AADSTS`].
pub fn spec(code: u32) -> &'static ErrorSpec {
    AADSTS
        .iter()
        .find(|s| s.code == code)
        .unwrap_or_else(|| unreachable_code(code))
}

#[cold]
fn unreachable_code(code: u32) -> &'static ErrorSpec {
    // Only reachable through a programming error; answer with a generic row instead of panicking.
    tracing::error!(code, "AADSTS code missing from the table");
    &AADSTS[AADSTS.len() - 2]
}

/// Fills the `{}` placeholders of `template` with `args`, in order.
fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut args = args.iter();
    let mut rest = template;
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        out.push_str(args.next().copied().unwrap_or(""));
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

/// An error the Entra surface answers with. Renders as Entra's JSON error body.
#[derive(Debug, Clone)]
pub struct EntraError {
    spec: &'static ErrorSpec,
    message: String,
    correlation_id: Option<String>,
    now: Option<OffsetDateTime>,
}

impl EntraError {
    /// An error for AADSTS `code` with its placeholders filled by `args`.
    pub fn new(code: u32, args: &[&str]) -> Self {
        let spec = spec(code);
        Self {
            spec,
            message: fill(spec.template, args),
            correlation_id: None,
            now: None,
        }
    }

    /// Sets the correlation id (Entra echoes the client's `client-request-id`).
    pub fn with_correlation_id(mut self, id: Option<String>) -> Self {
        self.correlation_id = id;
        self
    }

    /// Sets the time the error is stamped with (the emulator's clock).
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// The AADSTS code.
    pub fn code(&self) -> u32 {
        self.spec.code
    }

    /// The message without the `AADSTSnnnn: ` prefix and trace lines.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for EntraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AADSTS{}: {}", self.spec.code, self.message)
    }
}

impl std::error::Error for EntraError {}

/// The JSON body of an Entra error.
#[derive(Serialize)]
struct EntraErrorBody<'a> {
    error: &'a str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: &'a str,
    trace_id: &'a str,
    correlation_id: &'a str,
    error_uri: String,
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let now = self.now.unwrap_or_else(OffsetDateTime::now_utc);
        let timestamp = now
            .format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .unwrap_or_default();
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = self
            .correlation_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let body = EntraErrorBody {
            error: self.spec.error,
            error_description: format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.spec.code, self.message
            ),
            error_codes: [self.spec.code],
            timestamp: &timestamp,
            trace_id: &trace_id,
            correlation_id: &correlation_id,
            error_uri: format!(
                "https://login.microsoftonline.com/error?code={}",
                self.spec.code
            ),
        };
        let status = StatusCode::from_u16(self.spec.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Ok(v) = HeaderValue::from_str(&trace_id) {
            headers.insert("x-ms-request-id", v);
        }
        response
    }
}

/// An error of the emulator's own control plane: `{"error": code, "message": text}`.
#[derive(Debug, Clone)]
pub struct ControlError {
    /// HTTP status.
    pub status: StatusCode,
    /// A short machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
}

impl ControlError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }

    /// A 404 with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    /// A 500 with `message`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_placeholders_fill_in_order() {
        let mut codes: Vec<u32> = AADSTS.iter().map(|s| s.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), AADSTS.len());
        let e = EntraError::new(700016, &["app", "tenant"]);
        assert!(e.message().starts_with(
            "Application with identifier 'app' was not found in the directory 'tenant'."
        ));
        assert_eq!(e.code(), 700016);
    }

    #[test]
    fn every_required_code_is_in_the_table() {
        for code in [
            90002, 700016, 7000215, 7000222, 7000218, 50027, 700027, 700024, 700211, 700212,
            700213, 1002012, 70003,
        ] {
            assert_eq!(spec(code).code, code);
        }
    }
}
