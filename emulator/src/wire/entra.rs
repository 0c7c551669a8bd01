//! Entra-shaped errors: one data table of AADSTS texts, one typed variant per error
//! ([`Aadsts`]), and one response type that renders them ([`EntraError`]).
//!
//! Handlers never build error JSON by hand: they name an [`Aadsts`] variant with its values.
//! The table is public so tests and other tools can enumerate it.

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
        code: 50194,
        error: "invalid_request",
        status: 400,
        template: "Application '{}' is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
    },
    ErrorSpec {
        code: 50173,
        error: "invalid_grant",
        status: 400,
        template: "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '{}' and the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
    },
    ErrorSpec {
        code: 50076,
        error: "interaction_required",
        status: 400,
        template: "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '{}'.",
    },
    ErrorSpec {
        code: 54005,
        error: "invalid_grant",
        status: 400,
        template: "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
    },
    ErrorSpec {
        code: 70008,
        error: "invalid_grant",
        status: 400,
        template: "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
    },
    ErrorSpec {
        code: 501481,
        error: "invalid_grant",
        status: 400,
        template: "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
    },
    ErrorSpec {
        code: 50011,
        error: "invalid_request",
        status: 400,
        template: "The redirect URI '{}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
    },
    ErrorSpec {
        code: 70016,
        error: "authorization_pending",
        status: 400,
        template: "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    },
    ErrorSpec {
        code: 70000,
        error: "authorization_declined",
        status: 400,
        template: "The end user denied the authorization request.",
    },
    ErrorSpec {
        code: 70019,
        error: "expired_token",
        status: 400,
        template: "Verification code expired.",
    },
    ErrorSpec {
        code: 70018,
        error: "bad_verification_code",
        status: 400,
        template: "Invalid verification code due to User typing in wrong user code for device code flow.",
    },
    ErrorSpec {
        code: 50034,
        error: "invalid_grant",
        status: 400,
        template: "The user account {} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
    },
    ErrorSpec {
        code: 50058,
        error: "login_required",
        status: 400,
        template: "A silent sign-in request was sent but no user is signed in.",
    },
    ErrorSpec {
        code: 65004,
        error: "access_denied",
        status: 400,
        template: "User declined to consent to access the app.",
    },
    ErrorSpec {
        code: 500121,
        error: "invalid_grant",
        status: 400,
        template: "Authentication failed during strong authentication request.",
    },
    ErrorSpec {
        code: 500133,
        error: "invalid_grant",
        status: 400,
        template: "Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: {}, expiry time of assertion {}.",
    },
    ErrorSpec {
        code: 500131,
        error: "invalid_grant",
        status: 400,
        template: "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '{}' and the expected audience is '{}' or one of the Application Id URIs of this application.",
    },
    ErrorSpec {
        code: 700054,
        error: "unsupported_response_type",
        status: 400,
        template: "response_type '{}' is not enabled for the application.",
    },
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
    ErrorSpec {
        code: 900561,
        error: "invalid_request",
        status: 405,
        template: "The endpoint only accepts other methods. Received a {} request at '{}'.",
    },
];

/// Looks a code up in [`AADSTS`].
pub fn spec(code: u32) -> Option<&'static ErrorSpec> {
    AADSTS.iter().find(|s| s.code == code)
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

/// Every error the Entra surface answers with, each with the values its message names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Aadsts {
    /// AADSTS90002: the tenant segment names no tenant.
    TenantNotFound {
        /// The segment as sent.
        tenant: String,
    },
    /// AADSTS900023: the tenant segment is neither a GUID nor a domain.
    InvalidTenant {
        /// The segment as sent.
        tenant: String,
    },
    /// AADSTS700016: no such application in the tenant.
    AppNotFound {
        /// The client id sent.
        client_id: String,
        /// The tenant segment sent.
        tenant: String,
    },
    /// AADSTS7000215: the client secret is wrong.
    InvalidSecret {
        /// The application.
        client_id: String,
    },
    /// AADSTS7000222: the client secret has expired.
    ExpiredSecret {
        /// The application.
        client_id: String,
    },
    /// AADSTS7000218: neither a secret nor an assertion was sent.
    MissingClientCredential,
    /// AADSTS50027: the assertion is not a usable JWT.
    MalformedAssertion {
        /// What is wrong with it.
        detail: String,
    },
    /// AADSTS50013: a federated assertion's signature does not verify.
    FederatedSignature {
        /// Why.
        reason: String,
        /// The key id or thumbprint the assertion names.
        thumbprint: String,
        /// The application.
        client_id: String,
    },
    /// AADSTS700027: a certificate assertion's signature does not verify.
    CertificateSignature {
        /// Why.
        reason: String,
        /// The thumbprint the assertion names.
        thumbprint: String,
        /// The application.
        client_id: String,
    },
    /// AADSTS700024: the assertion is outside its time window.
    AssertionTime {
        /// The emulator's time.
        now: String,
        /// The assertion's `nbf`.
        not_before: String,
        /// The assertion's `exp`.
        expires: String,
    },
    /// AADSTS700021: the assertion's `sub` is not the client id.
    AssertionSubject,
    /// AADSTS700023: the assertion's `aud` is not the token endpoint.
    AssertionAudience,
    /// AADSTS700211: no federated credential trusts the issuer.
    FederatedIssuer {
        /// The assertion's `iss`.
        issuer: String,
    },
    /// AADSTS700212: no federated credential has the audience.
    FederatedAudience {
        /// The assertion's audiences.
        audience: String,
    },
    /// AADSTS700213: no federated credential has the subject.
    FederatedSubject {
        /// The assertion's `sub`.
        subject: String,
    },
    /// AADSTS700222: an Entra-issued token was presented as a federated assertion.
    EntraTokenAsAssertion,
    /// AADSTS1002012: a client-credentials scope without `/.default`.
    ScopeNotDefault {
        /// The scope.
        scope: String,
    },
    /// AADSTS70011: the scope list is not valid.
    InvalidScope {
        /// The scope parameter.
        scope: String,
    },
    /// AADSTS500011: the resource is unknown in the tenant (strict mode).
    ResourceNotFound {
        /// The resource.
        resource: String,
        /// The tenant.
        tenant: String,
    },
    /// AADSTS70003: an unsupported `grant_type`.
    UnsupportedGrant {
        /// The grant type sent.
        grant_type: String,
    },
    /// AADSTS900144: a required parameter is missing.
    MissingParameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// AADSTS50126: wrong user name or password.
    InvalidUserCredentials,
    /// AADSTS9002313: a malformed grant.
    InvalidGrant {
        /// What is wrong.
        detail: String,
    },
    /// AADSTS700082: the refresh token has expired.
    RefreshTokenExpired {
        /// When it was issued.
        issued: String,
    },
    /// AADSTS90033: a transient error.
    TemporarilyUnavailable,
    /// AADSTS90004: the request is malformed.
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// AADSTS90056: the path names no resource.
    ResourceDisabled {
        /// The path.
        path: String,
    },
    /// AADSTS900561: the endpoint does not take this method.
    MethodNotAllowed {
        /// The method sent.
        method: String,
        /// The path.
        path: String,
    },
    /// AADSTS50194: a tenant alias (`common`, `organizations`) for a single-tenant application.
    AppNotMultiTenant {
        /// The application.
        client_id: String,
    },
    /// AADSTS50173: the user's sessions were revoked after the grant was issued.
    SessionRevoked {
        /// When the grant was issued.
        issued: String,
        /// When the user's sessions were revoked.
        valid_from: String,
    },
    /// AADSTS50076: the user needs a second factor, which a non-interactive grant cannot give.
    MfaRequired {
        /// The resource asked for.
        resource: String,
    },
    /// AADSTS54005: the authorization code was redeemed before.
    CodeRedeemed,
    /// AADSTS70008: the authorization code has expired.
    CodeExpired,
    /// AADSTS501481: the PKCE verifier does not match the challenge (or is missing).
    PkceMismatch,
    /// AADSTS50011: the redirect URI is not one of the application's.
    RedirectMismatch {
        /// The redirect URI sent.
        redirect_uri: String,
        /// The application.
        client_id: String,
    },
    /// AADSTS70016: the device code is not approved yet; keep polling.
    AuthorizationPending,
    /// AADSTS70000 (`authorization_declined`): the user declined the device code.
    AuthorizationDeclined,
    /// AADSTS70019: the device code has expired.
    DeviceCodeExpired,
    /// AADSTS70018: the device code or user code is not one the emulator issued.
    BadVerificationCode,
    /// AADSTS50034: no such user in the tenant.
    UserNotFound {
        /// The user name typed.
        user: String,
        /// The tenant.
        tenant: String,
    },
    /// AADSTS50058: `prompt=none` without a session.
    LoginRequired,
    /// AADSTS65004: the user cancelled the sign-in.
    UserCancelled,
    /// AADSTS500121: the verification code was wrong.
    MfaFailed,
    /// AADSTS500133: an on-behalf-of assertion has expired.
    AssertionExpired {
        /// The emulator's time.
        now: String,
        /// The assertion's expiry.
        expires: String,
    },
    /// AADSTS500131: an on-behalf-of assertion was issued for another application.
    AssertionAudienceMismatch {
        /// The assertion's audience.
        audience: String,
        /// The middle tier's client id.
        expected: String,
    },
    /// AADSTS700054: only `response_type=code` is served.
    UnsupportedResponseType {
        /// The response type sent.
        response_type: String,
    },
}

impl Aadsts {
    /// The numeric AADSTS code.
    pub fn code(&self) -> u32 {
        match self {
            Aadsts::TenantNotFound { .. } => 90002,
            Aadsts::InvalidTenant { .. } => 900023,
            Aadsts::AppNotFound { .. } => 700016,
            Aadsts::InvalidSecret { .. } => 7000215,
            Aadsts::ExpiredSecret { .. } => 7000222,
            Aadsts::MissingClientCredential => 7000218,
            Aadsts::MalformedAssertion { .. } => 50027,
            Aadsts::FederatedSignature { .. } => 50013,
            Aadsts::CertificateSignature { .. } => 700027,
            Aadsts::AssertionTime { .. } => 700024,
            Aadsts::AssertionSubject => 700021,
            Aadsts::AssertionAudience => 700023,
            Aadsts::FederatedIssuer { .. } => 700211,
            Aadsts::FederatedAudience { .. } => 700212,
            Aadsts::FederatedSubject { .. } => 700213,
            Aadsts::EntraTokenAsAssertion => 700222,
            Aadsts::ScopeNotDefault { .. } => 1002012,
            Aadsts::InvalidScope { .. } => 70011,
            Aadsts::ResourceNotFound { .. } => 500011,
            Aadsts::UnsupportedGrant { .. } => 70003,
            Aadsts::MissingParameter { .. } => 900144,
            Aadsts::InvalidUserCredentials => 50126,
            Aadsts::InvalidGrant { .. } => 9002313,
            Aadsts::RefreshTokenExpired { .. } => 700082,
            Aadsts::TemporarilyUnavailable => 90033,
            Aadsts::Malformed { .. } => 90004,
            Aadsts::ResourceDisabled { .. } => 90056,
            Aadsts::MethodNotAllowed { .. } => 900561,
            Aadsts::SessionRevoked { .. } => 50173,
            Aadsts::AppNotMultiTenant { .. } => 50194,
            Aadsts::MfaRequired { .. } => 50076,
            Aadsts::CodeRedeemed => 54005,
            Aadsts::CodeExpired => 70008,
            Aadsts::PkceMismatch => 501481,
            Aadsts::RedirectMismatch { .. } => 50011,
            Aadsts::AuthorizationPending => 70016,
            Aadsts::AuthorizationDeclined => 70000,
            Aadsts::DeviceCodeExpired => 70019,
            Aadsts::BadVerificationCode => 70018,
            Aadsts::UserNotFound { .. } => 50034,
            Aadsts::LoginRequired => 50058,
            Aadsts::UserCancelled => 65004,
            Aadsts::MfaFailed => 500121,
            Aadsts::AssertionExpired { .. } => 500133,
            Aadsts::AssertionAudienceMismatch { .. } => 500131,
            Aadsts::UnsupportedResponseType { .. } => 700054,
        }
    }

    /// The values for the table row's placeholders, in order.
    fn args(&self) -> Vec<&str> {
        match self {
            Aadsts::TenantNotFound { tenant } | Aadsts::InvalidTenant { tenant } => vec![tenant],
            Aadsts::AppNotFound { client_id, tenant } => vec![client_id, tenant],
            Aadsts::InvalidSecret { client_id }
            | Aadsts::ExpiredSecret { client_id }
            | Aadsts::AppNotMultiTenant { client_id } => {
                vec![client_id]
            }
            Aadsts::MalformedAssertion { detail }
            | Aadsts::InvalidGrant { detail }
            | Aadsts::Malformed { detail } => vec![detail],
            Aadsts::FederatedSignature {
                reason,
                thumbprint,
                client_id,
            } => {
                vec![reason, thumbprint, client_id]
            }
            Aadsts::CertificateSignature {
                reason,
                thumbprint,
                client_id,
            } => {
                vec![reason, thumbprint, client_id, client_id]
            }
            Aadsts::AssertionTime {
                now,
                not_before,
                expires,
            } => vec![now, not_before, expires],
            Aadsts::FederatedIssuer { issuer } => vec![issuer],
            Aadsts::FederatedAudience { audience } => vec![audience],
            Aadsts::FederatedSubject { subject } => vec![subject],
            Aadsts::ScopeNotDefault { scope } | Aadsts::InvalidScope { scope } => vec![scope],
            Aadsts::ResourceNotFound { resource, tenant } => vec![resource, tenant],
            Aadsts::UnsupportedGrant { grant_type } => vec![grant_type],
            Aadsts::MissingParameter { name } => vec![name],
            Aadsts::RefreshTokenExpired { issued } => vec![issued],
            Aadsts::ResourceDisabled { path } => vec![path],
            Aadsts::MethodNotAllowed { method, path } => vec![method, path],
            Aadsts::SessionRevoked { issued, valid_from } => vec![issued, valid_from],
            Aadsts::MfaRequired { resource } => vec![resource],
            Aadsts::RedirectMismatch {
                redirect_uri,
                client_id,
            } => vec![redirect_uri, client_id],
            Aadsts::UserNotFound { user, tenant } => vec![user, tenant],
            Aadsts::AssertionExpired { now, expires } => vec![now, expires],
            Aadsts::AssertionAudienceMismatch { audience, expected } => vec![audience, expected],
            Aadsts::UnsupportedResponseType { response_type } => vec![response_type],
            Aadsts::MissingClientCredential
            | Aadsts::AssertionSubject
            | Aadsts::AssertionAudience
            | Aadsts::EntraTokenAsAssertion
            | Aadsts::InvalidUserCredentials
            | Aadsts::TemporarilyUnavailable
            | Aadsts::CodeRedeemed
            | Aadsts::CodeExpired
            | Aadsts::PkceMismatch
            | Aadsts::AuthorizationPending
            | Aadsts::AuthorizationDeclined
            | Aadsts::DeviceCodeExpired
            | Aadsts::BadVerificationCode
            | Aadsts::LoginRequired
            | Aadsts::UserCancelled
            | Aadsts::MfaFailed => Vec::new(),
        }
    }
}

/// The row every variant's code has; the table and [`Aadsts::code`] are kept in step by a test.
fn row(code: u32) -> &'static ErrorSpec {
    spec(code).unwrap_or(&AADSTS[0])
}

/// An error the Entra surface answers with. Renders as Entra's JSON error body.
#[derive(Debug, Clone)]
pub struct EntraError {
    spec: &'static ErrorSpec,
    message: String,
    status: Option<StatusCode>,
    correlation_id: Option<String>,
    now: Option<OffsetDateTime>,
}

impl From<Aadsts> for EntraError {
    fn from(error: Aadsts) -> Self {
        let spec = row(error.code());
        Self {
            spec,
            message: fill(spec.template, &error.args()),
            status: None,
            correlation_id: None,
            now: None,
        }
    }
}

impl EntraError {
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

    /// Answers with `status` instead of the code's own (an injected fault).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The AADSTS code.
    pub fn code(&self) -> u32 {
        self.spec.code
    }

    /// The OAuth `error` value (`invalid_grant`, `login_required`, ...).
    pub fn oauth_error(&self) -> &'static str {
        self.spec.error
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

impl EntraError {
    fn body<'a>(
        &'a self,
        timestamp: &'a str,
        trace_id: &'a str,
        correlation_id: &'a str,
    ) -> EntraErrorBody<'a> {
        let code = self.spec.code;
        EntraErrorBody {
            error: self.spec.error,
            error_description: format!(
                "AADSTS{code}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.message
            ),
            error_codes: [code],
            timestamp,
            trace_id,
            correlation_id,
            error_uri: format!("https://login.microsoftonline.com/error?code={code}"),
        }
    }
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        // A missing time is a programming slip; the Unix epoch makes it visible in tests.
        let now = self.now.unwrap_or(OffsetDateTime::UNIX_EPOCH);
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
        let status = self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.spec.status).unwrap_or(StatusCode::BAD_REQUEST)
        });
        let body = self.body(&timestamp, &trace_id, &correlation_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One value of every variant, with placeholder values named after their fields.
    fn every_variant() -> Vec<Aadsts> {
        let v = |s: &str| format!("<{s}>");
        vec![
            Aadsts::TenantNotFound {
                tenant: v("tenant"),
            },
            Aadsts::InvalidTenant {
                tenant: v("tenant"),
            },
            Aadsts::AppNotFound {
                client_id: v("client_id"),
                tenant: v("tenant"),
            },
            Aadsts::InvalidSecret {
                client_id: v("client_id"),
            },
            Aadsts::ExpiredSecret {
                client_id: v("client_id"),
            },
            Aadsts::MissingClientCredential,
            Aadsts::MalformedAssertion {
                detail: v("detail"),
            },
            Aadsts::FederatedSignature {
                reason: v("reason"),
                thumbprint: v("thumbprint"),
                client_id: v("client_id"),
            },
            Aadsts::CertificateSignature {
                reason: v("reason"),
                thumbprint: v("thumbprint"),
                client_id: v("client_id"),
            },
            Aadsts::AssertionTime {
                now: v("now"),
                not_before: v("nbf"),
                expires: v("exp"),
            },
            Aadsts::AssertionSubject,
            Aadsts::AssertionAudience,
            Aadsts::FederatedIssuer {
                issuer: v("issuer"),
            },
            Aadsts::FederatedAudience {
                audience: v("audience"),
            },
            Aadsts::FederatedSubject {
                subject: v("subject"),
            },
            Aadsts::EntraTokenAsAssertion,
            Aadsts::ScopeNotDefault { scope: v("scope") },
            Aadsts::InvalidScope { scope: v("scope") },
            Aadsts::ResourceNotFound {
                resource: v("resource"),
                tenant: v("tenant"),
            },
            Aadsts::UnsupportedGrant {
                grant_type: v("grant_type"),
            },
            Aadsts::MissingParameter { name: "client_id" },
            Aadsts::InvalidUserCredentials,
            Aadsts::InvalidGrant {
                detail: v("detail"),
            },
            Aadsts::RefreshTokenExpired {
                issued: v("issued"),
            },
            Aadsts::TemporarilyUnavailable,
            Aadsts::Malformed {
                detail: v("detail"),
            },
            Aadsts::ResourceDisabled { path: v("path") },
            Aadsts::MethodNotAllowed {
                method: v("method"),
                path: v("path"),
            },
            Aadsts::SessionRevoked {
                issued: v("issued"),
                valid_from: v("valid_from"),
            },
            Aadsts::AppNotMultiTenant {
                client_id: v("client_id"),
            },
            Aadsts::MfaRequired {
                resource: v("resource"),
            },
            Aadsts::CodeRedeemed,
            Aadsts::CodeExpired,
            Aadsts::PkceMismatch,
            Aadsts::RedirectMismatch {
                redirect_uri: v("redirect_uri"),
                client_id: v("client_id"),
            },
            Aadsts::AuthorizationPending,
            Aadsts::AuthorizationDeclined,
            Aadsts::DeviceCodeExpired,
            Aadsts::BadVerificationCode,
            Aadsts::UserNotFound {
                user: v("user"),
                tenant: v("tenant"),
            },
            Aadsts::LoginRequired,
            Aadsts::UserCancelled,
            Aadsts::MfaFailed,
            Aadsts::AssertionExpired {
                now: v("now"),
                expires: v("expires"),
            },
            Aadsts::AssertionAudienceMismatch {
                audience: v("audience"),
                expected: v("expected"),
            },
            Aadsts::UnsupportedResponseType {
                response_type: v("response_type"),
            },
        ]
    }

    #[test]
    fn every_table_row_has_exactly_one_variant_and_every_placeholder_is_filled() {
        let mut codes: Vec<u32> = AADSTS.iter().map(|s| s.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), AADSTS.len(), "codes are unique");
        let variants = every_variant();
        let mut covered: Vec<u32> = variants.iter().map(Aadsts::code).collect();
        covered.sort_unstable();
        assert_eq!(covered, codes, "one variant per table row");
        for variant in variants {
            let spec = spec(variant.code()).expect("in the table");
            assert_eq!(
                spec.template.matches("{}").count(),
                variant.args().len(),
                "{variant:?}"
            );
        }
    }

    /// Every AADSTS error body, pinned: a change to a text or a field shows as a diff.
    #[test]
    fn every_error_body() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for variant in every_variant() {
            let error = EntraError::from(variant).at(now);
            let trace = "00000000-0000-0000-0000-0000000000aa";
            let correlation = "00000000-0000-0000-0000-0000000000bb";
            let body = serde_json::to_value(error.body("2027-01-15 08:00:00Z", trace, correlation))
                .unwrap();
            let status = error.clone().into_response().status().as_u16();
            insta::assert_json_snapshot!(
                format!("aadsts_{}", error.code()),
                serde_json::json!({ "status": status, "body": body })
            );
        }
    }
}
