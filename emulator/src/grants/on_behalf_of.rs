//! On-behalf-of (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with
//! `requested_token_use=on_behalf_of`): a middle-tier API exchanges the user token it received
//! for a token to a downstream resource. The assertion must be a user token this emulator
//! issued for the middle tier (signature, audience, expiry); the middle tier authenticates with
//! its secret or certificate; the new token keeps the user and names the middle tier as client.

use super::client_auth::{authenticate, presented};
use super::user::{self, Issue, SignedIn};
use super::{Grant, TokenResponse};
use crate::assertion::format_time;
use crate::config::User;
use crate::crypto::ParsedJwt;
use crate::state::Ring;
use crate::tokens;
use crate::wire::{Aadsts, EntraError};

pub(super) fn issue(
    grant: &Grant<'_>,
    basic: Option<(String, String)>,
) -> Result<TokenResponse, EntraError> {
    if grant.field("requested_token_use") != Some("on_behalf_of") {
        return Err(Aadsts::MissingParameter {
            name: "requested_token_use",
        }
        .into());
    }
    let assertion = grant.required("assertion")?;
    let scope = grant.required("scope")?;
    let app = grant
        .directory
        .sign_in_app(&grant.tenant.id, &grant.client_id)
        .ok_or_else(|| Aadsts::AppNotFound {
            client_id: grant.client_id.clone(),
            tenant: grant.tenant_segment.to_string(),
        })?;
    let auth = authenticate(grant, app, presented(grant, basic)?)?;
    let jwt = ParsedJwt::parse(assertion).ok_or_else(|| Aadsts::MalformedAssertion {
        detail: "The assertion is not a JWT.".to_string(),
    })?;
    verify(grant, &jwt)?;
    let (user, tenant_id) = assertion_user(grant, &jwt)?;
    let signed_in = SignedIn {
        user,
        tenant_id: &tenant_id,
        generation: grant.shared.sign_in.generation(&user.object_id),
    };
    let issue = Issue {
        client_acr: auth.acr(),
        nonce: None,
    };
    user::respond(grant, signed_in, scope, issue)
}

/// Signature by the emulator's token key, audience the middle tier, not expired.
fn verify(grant: &Grant<'_>, jwt: &ParsedJwt) -> Result<(), EntraError> {
    let signed = grant
        .shared
        .published_keys(Ring::Tokens)
        .iter()
        .any(|k| jwt.verify_with(k.public()));
    if !signed {
        return Err(Aadsts::FederatedSignature {
            reason: "The key was not found.".to_string(),
            thumbprint: jwt.header_str("kid").unwrap_or_default().to_string(),
            client_id: grant.client_id.clone(),
        }
        .into());
    }
    let audience = jwt.claim_str("aud").unwrap_or_default();
    let wanted = audience.trim_end_matches('/').to_ascii_lowercase();
    if !grant
        .directory
        .audiences_of(&grant.client_id)
        .contains(&wanted)
    {
        return Err(Aadsts::AssertionAudienceMismatch {
            audience: audience.to_string(),
            expected: grant.client_id.clone(),
        }
        .into());
    }
    let expires = jwt.claim_time("exp").unwrap_or_default();
    if expires <= grant.now() {
        return Err(Aadsts::AssertionExpired {
            now: format_time(grant.now()),
            expires: format_time(expires),
        }
        .into());
    }
    Ok(())
}

/// The seeded user the assertion stands for, and its tenant.
fn assertion_user<'d>(
    grant: &Grant<'d>,
    jwt: &ParsedJwt,
) -> Result<(&'d User, String), EntraError> {
    let not_user = || -> EntraError {
        Aadsts::InvalidGrant {
            detail: "The assertion is not a user's token: on-behalf-of needs the token a user \
                     signed in for."
                .to_string(),
        }
        .into()
    };
    if jwt.claim_str("idtyp") == Some("app") {
        return Err(not_user());
    }
    let tenant_id = jwt.claim_str("tid").unwrap_or_default().to_string();
    let oid = jwt.claim_str("oid").unwrap_or_default();
    let user = grant
        .directory
        .seed
        .users
        .iter()
        .find(|u| u.member_of(&tenant_id) && tokens::user_object_id(u, &tenant_id) == oid)
        .ok_or_else(not_user)?;
    Ok((user, tenant_id))
}
