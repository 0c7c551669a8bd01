//! `grant_type=client_credentials`: an application's own token, authenticated by a secret or
//! an assertion.

use serde_json::Value;

use super::client_auth::{authenticate, presented};
use super::{Grant, OIDC_SCOPES, TokenResponse, V1Token, V2Token, Version};
use crate::directory::ResolvedResource;
use crate::state::Ring;
use crate::tokens::{self, AppTokenRequest};
use crate::wire::{Aadsts, EntraError};

/// The lifetime Entra gives tokens for CAE-capable clients (`xms_cc` with `cp1`).
pub(crate) const CAE_LIFETIME_SECS: i64 = 86399;

pub(super) fn issue(
    grant: &Grant<'_>,
    basic: Option<(String, String)>,
) -> Result<TokenResponse, EntraError> {
    let app = grant
        .directory
        .app(&grant.tenant.id, &grant.client_id)
        .ok_or_else(|| Aadsts::AppNotFound {
            client_id: grant.client_id.clone(),
            tenant: grant.tenant_segment.to_string(),
        })?;
    let resource = requested_resource(grant)?;
    let auth = authenticate(grant, app, presented(grant, basic)?)?;
    let resolved = resolve(grant, &resource)?;
    let (capabilities, lifetime) = capabilities_and_lifetime(grant);
    let access_token = tokens::app_token(
        &grant.shared.signing_key(Ring::Tokens),
        &AppTokenRequest {
            tenant_id: &grant.tenant.id,
            client_id: &app.client_id,
            object_id: &app.object_id,
            roles: &app.roles,
            audience: &resolved.audience,
            version: resolved.version,
            auth,
            now: grant.shared.revocations.issue_time(
                [app.client_id.as_str(), app.object_id.as_str()],
                grant.now(),
            ),
            lifetime_secs: lifetime,
            origin: &grant.ctx.origin,
            capabilities: &capabilities,
            mi_resource_id: None,
        },
    );
    Ok(response(grant, access_token, lifetime, resource))
}

/// The resource the request is for: `scope` minus `/.default` (v2) or `resource` (v1).
fn requested_resource(grant: &Grant<'_>) -> Result<String, EntraError> {
    if grant.version == Version::V1 {
        return grant
            .field("resource")
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Aadsts::MissingParameter { name: "resource" }.into());
    }
    let scope = grant.required("scope")?;
    let scopes: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(s))
        .collect();
    let [only] = scopes.as_slice() else {
        return Err(Aadsts::InvalidScope {
            scope: scope.to_string(),
        }
        .into());
    };
    only.strip_suffix("/.default")
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            Aadsts::ScopeNotDefault {
                scope: only.to_string(),
            }
            .into()
        })
}

/// The audience and token version for `resource`; unknown resources pass unless strict.
fn resolve(grant: &Grant<'_>, resource: &str) -> Result<ResolvedResource, EntraError> {
    match grant.directory.resource(&grant.tenant.id, resource) {
        Some(r) => Ok(r),
        None if grant.directory.settings().strict => Err(Aadsts::ResourceNotFound {
            resource: resource.to_string(),
            tenant: grant.tenant.id.clone(),
        }
        .into()),
        None => Ok(ResolvedResource {
            audience: resource.to_string(),
            version: 2,
        }),
    }
}

fn response(
    grant: &Grant<'_>,
    access_token: String,
    lifetime: i64,
    resource: String,
) -> TokenResponse {
    let now = grant.now();
    if grant.version == Version::V1 {
        return TokenResponse::V1(V1Token {
            token_type: "Bearer",
            expires_in: lifetime.to_string(),
            ext_expires_in: lifetime.to_string(),
            expires_on: (now + lifetime).to_string(),
            not_before: now.to_string(),
            resource,
            access_token,
        });
    }
    TokenResponse::V2(V2Token {
        token_type: "Bearer",
        scope: None,
        expires_in: lifetime,
        ext_expires_in: lifetime,
        refresh_in: (lifetime >= 7200).then_some(lifetime / 2),
        access_token,
        refresh_token: None,
        id_token: None,
        client_info: None,
    })
}

/// The client capabilities a request declares (`claims`), and the lifetime its token gets:
/// CAE-capable clients get long-lived tokens.
pub(crate) fn capabilities_and_lifetime(grant: &Grant<'_>) -> (Vec<String>, i64) {
    let capabilities = client_capabilities(grant.field("claims"));
    let lifetime = if capabilities.is_empty() {
        grant.directory.settings().token_lifetime_secs as i64
    } else {
        CAE_LIFETIME_SECS
    };
    (capabilities, lifetime)
}

/// Client capabilities declared in a `claims` request parameter
/// (`{"access_token":{"xms_cc":{"values":["CP1"]}}}`), lower-cased as Entra emits them.
pub(crate) fn client_capabilities(claims: Option<&str>) -> Vec<String> {
    let Some(value) = claims.and_then(|c| serde_json::from_str::<Value>(c).ok()) else {
        return Vec::new();
    };
    value
        .pointer("/access_token/xms_cc/values")
        .and_then(|v| v.as_array())
        .map(|values| {
            values
                .iter()
                .filter_map(|v| v.as_str())
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_come_from_the_claims_parameter() {
        let claims = r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#;
        assert_eq!(client_capabilities(Some(claims)), ["cp1"]);
        assert!(client_capabilities(Some("not json")).is_empty());
        assert!(client_capabilities(None).is_empty());
    }
}
