//! Delegated (user) grants for the developer tools: the resource-owner password grant that
//! `az login` / `azd auth login` use against the emulator, and the refresh-token grant that
//! every later token request uses. Refresh tokens are stateless: JWTs signed with the token
//! key, so they survive an emulator restart like the keys do.

use serde_json::{Value, json};

use crate::config::User;
use crate::crypto::ParsedJwt;
use crate::directory::{Directory, ResolvedResource, TenantEntry};
use crate::errors::EntraError;
use crate::form;
use crate::state::{Ring, Shared};
use crate::tokens;

/// How long a refresh token lives without use (Entra: 90 days).
const REFRESH_LIFETIME_SECS: i64 = 90 * 24 * 3600;

/// The resource a delegated scope list names: the first scope that is not an OpenID scope,
/// without `/.default` or a permission name (`https://graph.microsoft.com/User.Read`).
fn resource_of(scope: &str) -> Option<String> {
    let first = scope
        .split_whitespace()
        .find(|s| !["openid", "profile", "offline_access"].contains(s))?;
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

/// A refresh token for `user` and `client_id`: a JWT signed with the token key.
pub(crate) fn mint_refresh_token(
    shared: &Shared,
    user: &User,
    client_id: &str,
    now: i64,
) -> String {
    shared.signing_key(Ring::Tokens).sign_jwt(
        &json!({
            "typ": "refresh",
            "sub": user.object_id,
            "tid": user.tenant,
            "cid": client_id,
            "iat": now,
            "exp": now + REFRESH_LIFETIME_SECS,
        }),
        false,
    )
}

/// Issues a user token response for `user`.
fn respond(
    shared: &Shared,
    directory: &Directory,
    user: &User,
    client_id: &str,
    scope: &str,
    origin: &str,
    now: i64,
) -> Result<Value, EntraError> {
    let resource = resource_of(scope).ok_or_else(|| EntraError::new(900144, &["scope"]))?;
    let resolved = directory
        .resource(&user.tenant, &resource)
        .unwrap_or(ResolvedResource {
            audience: resource.clone(),
            version: 2,
        });
    let lifetime = directory.settings().token_lifetime_secs as i64;
    let key = shared.signing_key(Ring::Tokens);
    let access_token = tokens::user_token(
        &key,
        user,
        &resolved.audience,
        resolved.version,
        now,
        lifetime,
        origin,
    );
    let refresh_token = key.sign_jwt(
        &json!({
            "typ": "refresh",
            "sub": user.object_id,
            "tid": user.tenant,
            "cid": client_id,
            "iat": now,
            "exp": now + REFRESH_LIFETIME_SECS,
        }),
        false,
    );
    Ok(json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
        "refresh_token": refresh_token,
    }))
}

/// `grant_type=password`.
pub(crate) fn password(
    shared: &Shared,
    tenant: &TenantEntry,
    fields: &[(String, String)],
    client_id: &str,
    origin: &str,
    now: i64,
) -> Result<Value, EntraError> {
    let directory = shared.directory();
    let username =
        form::get(fields, "username").ok_or_else(|| EntraError::new(900144, &["username"]))?;
    let password =
        form::get(fields, "password").ok_or_else(|| EntraError::new(900144, &["password"]))?;
    let scope = form::get(fields, "scope").ok_or_else(|| EntraError::new(900144, &["scope"]))?;
    let user = directory
        .seed
        .users
        .iter()
        .find(|u| {
            u.tenant.eq_ignore_ascii_case(&tenant.id)
                && u.user_principal_name.eq_ignore_ascii_case(username)
                && u.password.as_deref() == Some(password)
        })
        .ok_or_else(|| EntraError::new(50126, &[]))?;
    respond(shared, &directory, user, client_id, scope, origin, now)
}

/// `grant_type=refresh_token`.
pub(crate) fn refresh(
    shared: &Shared,
    tenant: &TenantEntry,
    fields: &[(String, String)],
    client_id: &str,
    origin: &str,
    now: i64,
) -> Result<Value, EntraError> {
    let directory = shared.directory();
    let presented = form::get(fields, "refresh_token")
        .ok_or_else(|| EntraError::new(900144, &["refresh_token"]))?;
    let scope = form::get(fields, "scope").ok_or_else(|| EntraError::new(900144, &["scope"]))?;
    let malformed = || {
        EntraError::new(
            9002313,
            &["The refresh token is not one this emulator issued."],
        )
    };
    let jwt = ParsedJwt::parse(presented).ok_or_else(malformed)?;
    let signed = shared
        .published_keys(Ring::Tokens)
        .iter()
        .any(|k| jwt.verify_with(k.public()));
    if !signed || jwt.claim_str("typ") != Some("refresh") {
        return Err(malformed());
    }
    if jwt.claim_time("exp").is_none_or(|exp| exp <= now) {
        let issued = jwt.claim_time("iat").unwrap_or_default().to_string();
        return Err(EntraError::new(700082, &[&issued]));
    }
    if !jwt
        .claim_str("tid")
        .is_some_and(|t| t.eq_ignore_ascii_case(&tenant.id))
    {
        return Err(EntraError::new(
            9002313,
            &["The refresh token was issued for another tenant."],
        ));
    }
    let oid = jwt.claim_str("sub").unwrap_or_default();
    let user = directory
        .seed
        .users
        .iter()
        .find(|u| u.object_id.eq_ignore_ascii_case(oid))
        .ok_or_else(malformed)?;
    respond(shared, &directory, user, client_id, scope, origin, now)
}
