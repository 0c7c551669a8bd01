//! `grant_type=refresh_token`: a refresh token this emulator issued, for the same tenant (or
//! through a tenant alias), whose user's sessions have not been revoked since.

use super::user::{self, Issue, SignedIn};
use super::{Grant, TokenResponse};
use crate::assertion::format_time;
use crate::crypto::ParsedJwt;
use crate::state::Ring;
use crate::wire::{Aadsts, EntraError};

fn malformed() -> EntraError {
    Aadsts::InvalidGrant {
        detail: "The refresh token is not one this emulator issued.".to_string(),
    }
    .into()
}

pub(super) fn issue(grant: &Grant<'_>) -> Result<TokenResponse, EntraError> {
    let presented = grant.required("refresh_token")?;
    let scope = user::requested_scope(grant)?;
    let jwt = ParsedJwt::parse(presented).ok_or_else(malformed)?;
    let (oid, tenant_id) = redeem(grant, &jwt)?;
    let user = grant
        .directory
        .user(&oid)
        .filter(|u| u.member_of(&tenant_id))
        .ok_or_else(malformed)?;
    let signed_in = SignedIn {
        user,
        tenant_id: &tenant_id,
        generation: grant.shared.sign_in.generation(&user.object_id),
    };
    user::respond(grant, signed_in, scope, Issue::default())
}

/// The user (home object id) and tenant of a valid refresh token.
fn redeem(grant: &Grant<'_>, jwt: &ParsedJwt) -> Result<(String, String), EntraError> {
    let signed = grant
        .shared
        .published_keys(Ring::Tokens)
        .iter()
        .any(|k| jwt.verify_with(k.public()));
    if !signed || jwt.claim_str("typ") != Some("refresh") {
        return Err(malformed());
    }
    let issued = jwt.claim_time("iat").unwrap_or_default();
    if jwt.claim_time("exp").is_none_or(|exp| exp <= grant.now()) {
        return Err(Aadsts::RefreshTokenExpired {
            issued: issued.to_string(),
        }
        .into());
    }
    let tenant_id = jwt.claim_str("tid").unwrap_or_default().to_string();
    if !grant.alias && !tenant_id.eq_ignore_ascii_case(&grant.tenant.id) {
        return Err(Aadsts::InvalidGrant {
            detail: "The refresh token was issued for another tenant.".to_string(),
        }
        .into());
    }
    let oid = jwt.claim_str("sub").unwrap_or_default().to_string();
    let generation = jwt.claims.get("gen").and_then(|g| g.as_u64()).unwrap_or(0);
    let current = grant.shared.sign_in.generation(&oid);
    if generation < current {
        return Err(Aadsts::SessionRevoked {
            issued: format_time(issued),
            valid_from: grant
                .shared
                .sign_in
                .revoked_at(&oid)
                .map(format_time)
                .unwrap_or_default(),
        }
        .into());
    }
    Ok((oid, tenant_id))
}
