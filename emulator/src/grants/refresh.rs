//! `grant_type=refresh_token`: a refresh token this emulator issued, for the same tenant.

use super::{Grant, TokenResponse, user};
use crate::config::User;
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
    let scope = grant.required("scope")?;
    let user = redeem(grant, presented)?;
    user::respond(grant, user, scope)
}

/// The user a valid refresh token stands for.
fn redeem<'d>(grant: &Grant<'d>, presented: &str) -> Result<&'d User, EntraError> {
    let jwt = ParsedJwt::parse(presented).ok_or_else(malformed)?;
    let signed = grant
        .shared
        .published_keys(Ring::Tokens)
        .iter()
        .any(|k| jwt.verify_with(k.public()));
    if !signed || jwt.claim_str("typ") != Some("refresh") {
        return Err(malformed());
    }
    if jwt.claim_time("exp").is_none_or(|exp| exp <= grant.now()) {
        let issued = jwt.claim_time("iat").unwrap_or_default().to_string();
        return Err(Aadsts::RefreshTokenExpired { issued }.into());
    }
    if !jwt
        .claim_str("tid")
        .is_some_and(|t| t.eq_ignore_ascii_case(&grant.tenant.id))
    {
        return Err(Aadsts::InvalidGrant {
            detail: "The refresh token was issued for another tenant.".to_string(),
        }
        .into());
    }
    let oid = jwt.claim_str("sub").unwrap_or_default();
    grant
        .directory
        .seed
        .users
        .iter()
        .find(|u| u.object_id.eq_ignore_ascii_case(oid))
        .ok_or_else(malformed)
}
