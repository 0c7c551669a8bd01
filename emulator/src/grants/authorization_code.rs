//! `grant_type=authorization_code`: redeems a code the authorization endpoint issued. A code is
//! good once, for a short time, for the client, redirect URI and scopes it was issued for, and
//! — when the request had a PKCE challenge — only with the matching `code_verifier`. Public
//! clients redeem without a credential; confidential ones authenticate as for client
//! credentials.

use super::client_auth::{authenticate, presented};
use super::user::{self, Issue, SignedIn};
use super::{Grant, TokenResponse};
use crate::sign_in::store::{CodeError, IssuedCode};
use crate::wire::{Aadsts, EntraError};

pub(super) fn issue(
    grant: &Grant<'_>,
    basic: Option<(String, String)>,
) -> Result<TokenResponse, EntraError> {
    let code = grant.required("code")?;
    let issued = grant
        .shared
        .sign_in
        .redeem_code(code, grant.now())
        .map_err(|e| match e {
            CodeError::Redeemed => Aadsts::CodeRedeemed,
            CodeError::Expired => Aadsts::CodeExpired,
            CodeError::Unknown => Aadsts::InvalidGrant {
                detail: "The authorization code is not one this emulator issued.".to_string(),
            },
        })?;
    check_binding(grant, &issued)?;
    let client_acr = client_acr(grant, &issued, basic)?;
    let user = grant
        .directory
        .user(&issued.user)
        .ok_or_else(|| Aadsts::InvalidGrant {
            detail: "The user the code was issued to no longer exists.".to_string(),
        })?;
    let signed_in = SignedIn {
        user,
        tenant_id: &issued.tenant_id,
        generation: issued.generation,
    };
    let issue = Issue {
        client_acr,
        nonce: issued.request.nonce.as_deref(),
    };
    user::respond(grant, signed_in, &issued.request.scope, issue)
}

/// The code must come back from its client, tenant and redirect URI, with its PKCE verifier,
/// and before its user's sessions were revoked.
fn check_binding(grant: &Grant<'_>, issued: &IssuedCode) -> Result<(), EntraError> {
    let request = &issued.request;
    if !request.client_id.eq_ignore_ascii_case(&grant.client_id) {
        return Err(Aadsts::InvalidGrant {
            detail: format!(
                "The authorization code was issued to application '{}', not '{}'.",
                request.client_id, grant.client_id
            ),
        }
        .into());
    }
    if !grant.alias && !issued.tenant_id.eq_ignore_ascii_case(&grant.tenant.id) {
        return Err(Aadsts::InvalidGrant {
            detail: "The authorization code was issued for another tenant.".to_string(),
        }
        .into());
    }
    let redirect_uri = grant.required("redirect_uri")?;
    if redirect_uri != request.redirect_uri {
        return Err(Aadsts::RedirectMismatch {
            redirect_uri: redirect_uri.to_string(),
            client_id: grant.client_id.clone(),
        }
        .into());
    }
    if let Some(challenge) = &request.challenge {
        let verifier = grant.field("code_verifier").unwrap_or_default();
        if !challenge.verifies(verifier) {
            return Err(Aadsts::PkceMismatch.into());
        }
    }
    if issued.generation < grant.shared.sign_in.generation(&issued.user) {
        return Err(Aadsts::CodeExpired.into());
    }
    Ok(())
}

/// `appidacr` of the redemption: "0" for a public client, else how the confidential client
/// authenticated.
fn client_acr(
    grant: &Grant<'_>,
    issued: &IssuedCode,
    basic: Option<(String, String)>,
) -> Result<&'static str, EntraError> {
    let app = grant
        .directory
        .sign_in_app(&issued.tenant_id, &grant.client_id)
        .ok_or_else(|| Aadsts::AppNotFound {
            client_id: grant.client_id.clone(),
            tenant: grant.tenant_segment.to_string(),
        })?;
    if app.public_client {
        return Ok("0");
    }
    Ok(authenticate(grant, app, presented(grant, basic)?)?.acr())
}
