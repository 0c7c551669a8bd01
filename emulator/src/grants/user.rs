//! What the delegated (user) grants share: the resource a scope list names, refresh tokens and
//! the token response. Refresh tokens are stateless: JWTs signed with the token key, so they
//! survive an emulator restart like the keys do.

use serde::Serialize;

use super::{Grant, OIDC_SCOPES, TokenResponse, V2Token};
use crate::config::User;
use crate::directory::ResolvedResource;
use crate::state::{Ring, Shared};
use crate::tokens;
use crate::wire::{Aadsts, EntraError};

/// How long a refresh token lives without use (Entra: 90 days).
const REFRESH_LIFETIME_SECS: i64 = 90 * 24 * 3600;

/// The resource a delegated scope list names: the first scope that is not an OpenID scope,
/// without `/.default` or a permission name (`https://graph.microsoft.com/User.Read`).
fn resource_of(scope: &str) -> Option<String> {
    let first = scope
        .split_whitespace()
        .find(|s| !OIDC_SCOPES.contains(s))?;
    if let Some(resource) = first.strip_suffix("/.default") {
        return Some(resource.to_string());
    }
    match url::Url::parse(first) {
        Ok(url) if url.has_host() && url.path().len() > 1 => {
            Some(url.origin().ascii_serialization())
        }
        _ => Some(first.to_string()),
    }
}

/// The claims of a refresh token: whose, for which client, and how long it lives.
#[derive(Debug, Serialize)]
struct RefreshClaims<'a> {
    cid: &'a str,
    exp: i64,
    iat: i64,
    sub: &'a str,
    tid: &'a str,
    typ: &'static str,
}

/// A refresh token for `user` and `client_id`: a JWT signed with the token key.
pub(crate) fn mint_refresh_token(
    shared: &Shared,
    user: &User,
    client_id: &str,
    now: i64,
) -> String {
    let claims = RefreshClaims {
        cid: client_id,
        exp: now + REFRESH_LIFETIME_SECS,
        iat: now,
        sub: &user.object_id,
        tid: &user.tenant,
        typ: "refresh",
    };
    shared.signing_key(Ring::Tokens).sign_jwt(&claims, false)
}

/// Issues a user token response for `user` and the request's `scope`.
pub(super) fn respond(
    grant: &Grant<'_>,
    user: &User,
    scope: &str,
) -> Result<TokenResponse, EntraError> {
    let resource = resource_of(scope).ok_or(Aadsts::MissingParameter { name: "scope" })?;
    let resolved = grant
        .directory
        .resource(&user.tenant, &resource)
        .unwrap_or(ResolvedResource {
            audience: resource.clone(),
            version: 2,
        });
    let lifetime = grant.directory.settings().token_lifetime_secs as i64;
    let now = grant.now();
    let access_token = tokens::user_token(
        &grant.shared.signing_key(Ring::Tokens),
        user,
        &resolved.audience,
        resolved.version,
        now,
        lifetime,
        &grant.ctx.origin,
    );
    Ok(TokenResponse::V2(V2Token {
        token_type: "Bearer",
        scope: Some(scope.to_string()),
        expires_in: lifetime,
        ext_expires_in: lifetime,
        refresh_in: None,
        access_token,
        refresh_token: Some(mint_refresh_token(
            grant.shared,
            user,
            &grant.client_id,
            now,
        )),
    }))
}
