//! `grant_type=password`: the resource-owner password grant `az login` / `azd auth login` use
//! against the emulator.

use super::{Grant, TokenResponse, user};
use crate::wire::{Aadsts, EntraError};

pub(super) fn issue(grant: &Grant<'_>) -> Result<TokenResponse, EntraError> {
    let username = grant.required("username")?;
    let password = grant.required("password")?;
    let scope = grant.required("scope")?;
    let user = grant
        .directory
        .seed
        .users
        .iter()
        .find(|u| {
            u.tenant.eq_ignore_ascii_case(&grant.tenant.id)
                && u.user_principal_name.eq_ignore_ascii_case(username)
                && u.password.as_deref() == Some(password)
        })
        .ok_or(Aadsts::InvalidUserCredentials)?;
    user::respond(grant, user, scope)
}
