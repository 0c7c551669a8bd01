//! What the delegated (user) grants share: the resource and permissions a scope list names,
//! refresh tokens, and the token response with `id_token` and `client_info`. Refresh tokens are
//! stateless JWTs signed with the token key (they survive a restart like the keys do) that
//! carry the user's session generation, so revoking the user's sessions voids them.

use serde::Serialize;

use super::{Grant, OIDC_SCOPES, TokenResponse, V2Token};
use crate::config::User;
use crate::directory::ResolvedResource;
use crate::state::{Ring, Shared};
use crate::tokens::{self, UserTokenRequest};
use crate::wire::{Aadsts, EntraError};

/// How long a refresh token lives without use (Entra: 90 days).
const REFRESH_LIFETIME_SECS: i64 = 90 * 24 * 3600;

/// Microsoft Graph, which scopes without a resource (`User.Read`, or only OpenID scopes) name.
const GRAPH: &str = "https://graph.microsoft.com";

/// A user who signed in, and where.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedIn<'a> {
    pub(crate) user: &'a User,
    /// The tenant the tokens are issued in (home, or one the user is a guest in).
    pub(crate) tenant_id: &'a str,
    /// The user's session generation when the grant was made.
    pub(crate) generation: u64,
}

/// How the client authenticated and what the sign-in request carried.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Issue<'a> {
    /// `appidacr`: "0" public client, "1" secret, "2" assertion.
    pub(crate) client_acr: &'static str,
    /// The sign-in request's `nonce`, echoed in the ID token.
    pub(crate) nonce: Option<&'a str>,
}

/// The resource and the delegated permissions a scope list names: the first scope that is not
/// an OpenID scope gives the resource (`https://graph.microsoft.com/User.Read` → Graph,
/// `User.Read` → Graph, `api://x/.default` → `api://x`); `.default` grants
/// `user_impersonation`.
pub(crate) fn resource_and_permissions(scope: &str) -> (String, String) {
    let scopes: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(s))
        .collect();
    let Some(first) = scopes.first() else {
        return (GRAPH.to_string(), "openid profile".to_string());
    };
    let resource = resource_of(first);
    let permissions: Vec<&str> = scopes
        .iter()
        .filter_map(|s| {
            let name = s.strip_prefix(resource.as_str()).unwrap_or(s);
            let name = name.trim_start_matches('/');
            (!name.is_empty() && name != ".default" && !name.contains("://")).then_some(name)
        })
        .collect();
    let scp = if permissions.is_empty() {
        "user_impersonation".to_string()
    } else {
        permissions.join(" ")
    };
    (resource, scp)
}

fn resource_of(first: &str) -> String {
    if let Some(resource) = first.strip_suffix("/.default") {
        return resource.to_string();
    }
    if !first.contains(':') && !first.contains('/') && uuid::Uuid::parse_str(first).is_err() {
        return GRAPH.to_string();
    }
    // `scheme://host/Permission`: the resource is what comes before the last segment.
    match first.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((host, path)) if !path.is_empty() => {
                let base = path.rsplit_once('/').map_or("", |(base, _)| base);
                let base = if base.is_empty() {
                    String::new()
                } else {
                    format!("/{base}")
                };
                format!("{scheme}://{host}{base}")
            }
            _ => first.trim_end_matches('/').to_string(),
        },
        None => first.to_string(),
    }
}

/// The claims of a refresh token: whose, for which client, in which tenant, and the user's
/// session generation.
#[derive(Debug, Serialize)]
struct RefreshClaims<'a> {
    cid: &'a str,
    exp: i64,
    #[serde(rename = "gen")]
    generation: u64,
    iat: i64,
    sub: &'a str,
    tid: &'a str,
    typ: &'static str,
}

/// A refresh token for `signed_in` and `client_id`: a JWT signed with the token key.
pub(crate) fn mint_refresh_token(
    shared: &Shared,
    signed_in: SignedIn<'_>,
    client_id: &str,
    now: i64,
) -> String {
    let claims = RefreshClaims {
        cid: client_id,
        exp: now + REFRESH_LIFETIME_SECS,
        generation: signed_in.generation,
        iat: now,
        sub: &signed_in.user.object_id,
        tid: signed_in.tenant_id,
        typ: "refresh",
    };
    shared.signing_key(Ring::Tokens).sign_jwt(&claims, false)
}

/// The scope a user grant asks for: `scope`, or v1's `resource`.
pub(super) fn requested_scope<'g>(grant: &'g Grant<'_>) -> Result<&'g str, EntraError> {
    grant
        .field("scope")
        .or_else(|| grant.field("resource"))
        .ok_or_else(|| Aadsts::MissingParameter { name: "scope" }.into())
}

/// When the user's new token counts as issued: after any revocation of the user (CAE).
fn issue_time(grant: &Grant<'_>, signed_in: &SignedIn<'_>) -> i64 {
    let user = signed_in.user;
    let oid = crate::tokens::user_object_id(user, signed_in.tenant_id);
    let ids = [
        user.object_id.as_str(),
        oid.as_str(),
        user.user_principal_name.as_str(),
    ];
    grant.shared.revocations.issue_time(ids, grant.now())
}

/// Issues a user token response: access token, refresh token, and — as asked — an ID token
/// (`openid`) and `client_info` (`client_info=1`).
pub(crate) fn respond(
    grant: &Grant<'_>,
    signed_in: SignedIn<'_>,
    scope: &str,
    issue: Issue<'_>,
) -> Result<TokenResponse, EntraError> {
    let (resource, scp) = resource_and_permissions(scope);
    let resolved = grant
        .directory
        .resource(signed_in.tenant_id, &resource)
        .unwrap_or(ResolvedResource {
            audience: resource.clone(),
            version: 2,
        });
    let (capabilities, lifetime) = super::capabilities_and_lifetime(grant);
    let key = grant.shared.signing_key(Ring::Tokens);
    let request = UserTokenRequest {
        user: signed_in.user,
        tenant_id: signed_in.tenant_id,
        client_id: &grant.client_id,
        client_acr: if issue.client_acr.is_empty() {
            "0"
        } else {
            issue.client_acr
        },
        audience: &resolved.audience,
        version: resolved.version,
        scp: &scp,
        now: issue_time(grant, &signed_in),
        lifetime_secs: lifetime,
        origin: &grant.ctx.origin,
        capabilities: &capabilities,
    };
    let openid = scope.split_whitespace().any(|s| s == "openid");
    Ok(TokenResponse::V2(V2Token {
        token_type: "Bearer",
        scope: Some(scope.to_string()),
        expires_in: lifetime,
        ext_expires_in: lifetime,
        refresh_in: None,
        access_token: tokens::user_token(&key, &request),
        refresh_token: Some(mint_refresh_token(
            grant.shared,
            signed_in,
            &grant.client_id,
            grant.now(),
        )),
        id_token: openid.then(|| tokens::id_token(&key, &request, issue.nonce)),
        client_info: (grant.field("client_info") == Some("1"))
            .then(|| tokens::client_info(signed_in.user)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_a_resource_and_permissions() {
        let cases = [
            (
                "https://management.azure.com/.default openid profile offline_access",
                "https://management.azure.com",
                "user_impersonation",
            ),
            (
                "https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.Read",
                GRAPH,
                "User.Read Mail.Read",
            ),
            ("User.Read openid", GRAPH, "User.Read"),
            ("openid profile", GRAPH, "openid profile"),
            (
                "api://entra-emulator-api/.default",
                "api://entra-emulator-api",
                "user_impersonation",
            ),
            (
                "api://entra-emulator-api/Items.Read",
                "api://entra-emulator-api",
                "Items.Read",
            ),
            (
                "https://vault.azure.net",
                "https://vault.azure.net",
                "user_impersonation",
            ),
            (
                "https://management.core.windows.net//user_impersonation",
                "https://management.core.windows.net",
                "user_impersonation",
            ),
        ];
        for (scope, resource, scp) in cases {
            assert_eq!(
                resource_and_permissions(scope),
                (resource.to_string(), scp.to_string()),
                "{scope}"
            );
        }
    }
}
