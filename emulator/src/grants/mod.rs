//! Grants: what the token endpoint does for each `grant_type`. Routes extract the request and
//! render the answer; each grant is a module that takes a [`Grant`] and returns a typed
//! [`TokenResponse`] or an [`EntraError`].
//!
//! A new grant is a module here with `fn issue(grant: &Grant<'_>) -> Result<TokenResponse,
//! EntraError>` and one arm in [`issue`].

use crate::context::RequestContext;
use crate::directory::{Directory, TenantEntry, TenantLookupError};
use crate::form;
use crate::state::Shared;
use crate::wire::{Aadsts, EntraError};

mod authorization_code;
mod client_auth;
mod client_credentials;
mod device_code;
mod on_behalf_of;
mod password;
mod refresh;
mod response;
pub(crate) mod user;

pub(crate) use client_credentials::{CAE_LIFETIME_SECS, capabilities_and_lifetime};
pub(crate) use response::{TokenResponse, V1Token, V2Token};

/// Which token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `/oauth2/token` with `resource`.
    V1,
    /// `/oauth2/v2.0/token` with `scope`.
    V2,
}

/// Form fields the token endpoint understands; others are ignored unless strict.
const KNOWN_FIELDS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "scope",
    "resource",
    "claims",
    "client_info",
    "client-request-id",
    "x-client-SKU",
    "x-client-VER",
    "x-client-OS",
    "x-client-CPU",
    "x-ms-lib-capability",
    "x-client-current-telemetry",
    "x-client-last-telemetry",
    "x-app-name",
    "x-app-ver",
    "username",
    "password",
    "refresh_token",
    "code",
    "redirect_uri",
    "code_verifier",
    "device_code",
    "assertion",
    "requested_token_use",
];

/// `grant_type` of the device-code grant (Entra also takes the bare `device_code`).
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// `grant_type` of the on-behalf-of grant.
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Scopes MSAL clients may add that do not name a resource.
pub(crate) const OIDC_SCOPES: &[&str] = &["openid", "profile", "offline_access"];

/// One token request, resolved as far as every grant needs: the tenant, the form and the
/// client id (from the form or HTTP Basic).
#[derive(Debug)]
pub(crate) struct Grant<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) ctx: &'a RequestContext,
    pub(crate) directory: &'a Directory,
    pub(crate) tenant: &'a TenantEntry,
    /// The tenant as the path named it.
    pub(crate) tenant_segment: &'a str,
    /// Whether the path named a tenant alias (`common`, `organizations`): user grants then
    /// take the tenant from the user, and [`Grant::tenant`] is only the first seeded tenant.
    pub(crate) alias: bool,
    pub(crate) version: Version,
    pub(crate) fields: &'a [(String, String)],
    pub(crate) client_id: String,
}

impl Grant<'_> {
    /// A form field, if sent.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        form::get(self.fields, name)
    }

    /// A form field Entra requires (AADSTS900144 without it).
    pub(crate) fn required(&self, name: &'static str) -> Result<&str, EntraError> {
        self.field(name)
            .ok_or_else(|| Aadsts::MissingParameter { name }.into())
    }

    /// The request's time in seconds since the epoch.
    pub(crate) fn now(&self) -> i64 {
        self.ctx.now.unix_timestamp()
    }
}

/// The tenant error for a path segment.
pub(crate) fn tenant_error(segment: &str, e: TenantLookupError) -> EntraError {
    let tenant = segment.to_string();
    match e {
        TenantLookupError::NotFound => Aadsts::TenantNotFound { tenant },
        TenantLookupError::Invalid => Aadsts::InvalidTenant { tenant },
    }
    .into()
}

/// Runs the grant a token request names.
pub(crate) fn issue(
    shared: &Shared,
    ctx: &RequestContext,
    tenant_segment: &str,
    version: Version,
) -> Result<TokenResponse, EntraError> {
    let directory = shared.directory();
    let alias = Directory::is_alias(tenant_segment);
    let tenant = if alias {
        directory
            .home_tenant()
            .ok_or_else(|| Aadsts::TenantNotFound {
                tenant: tenant_segment.to_string(),
            })?
    } else {
        directory
            .tenant(tenant_segment)
            .map_err(|e| tenant_error(tenant_segment, e))?
    };
    let fields = ctx.entra_form()?;
    reject_unknown_fields(&directory, fields)?;
    let basic = client_auth::basic_credentials(&ctx.headers);
    let grant_type =
        form::get(fields, "grant_type").ok_or(Aadsts::MissingParameter { name: "grant_type" })?;
    let client_id = form::get(fields, "client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
        .ok_or(Aadsts::MissingParameter { name: "client_id" })?;
    let grant = Grant {
        shared,
        ctx,
        directory: &directory,
        tenant,
        tenant_segment,
        alias,
        version,
        fields,
        client_id,
    };
    match grant_type {
        "client_credentials" if alias => Err(Aadsts::AppNotMultiTenant {
            client_id: grant.client_id.clone(),
        }
        .into()),
        "client_credentials" => client_credentials::issue(&grant, basic),
        "password" => password::issue(&grant),
        "refresh_token" => refresh::issue(&grant),
        "authorization_code" => authorization_code::issue(&grant, basic),
        DEVICE_CODE_GRANT | "device_code" => device_code::issue(&grant),
        JWT_BEARER_GRANT => on_behalf_of::issue(&grant, basic),
        other => Err(Aadsts::UnsupportedGrant {
            grant_type: other.to_string(),
        }
        .into()),
    }
}

/// In strict mode, a field the endpoint does not know is an error.
fn reject_unknown_fields(
    directory: &Directory,
    fields: &[(String, String)],
) -> Result<(), EntraError> {
    if !directory.settings().strict {
        return Ok(());
    }
    match fields
        .iter()
        .find(|(k, _)| !KNOWN_FIELDS.contains(&k.as_str()))
    {
        Some((name, _)) => Err(Aadsts::Malformed {
            detail: format!("unknown parameter '{name}'"),
        }
        .into()),
        None => Ok(()),
    }
}
