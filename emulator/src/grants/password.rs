//! `grant_type=password`: the resource-owner password grant `az login` / `azd auth login` use
//! against the emulator. Through a tenant alias (`organizations`, `common`) the user signs in
//! to its home tenant; a user whose sign-in needs a second factor is refused (AADSTS50076).

use super::user::{self, Issue, SignedIn};
use super::{Grant, TokenResponse};
use crate::wire::{Aadsts, EntraError};

pub(super) fn issue(grant: &Grant<'_>) -> Result<TokenResponse, EntraError> {
    let username = grant.required("username")?;
    let password = grant.required("password")?;
    let scope = user::requested_scope(grant)?;
    let user = grant
        .directory
        .seed
        .users
        .iter()
        .find(|u| {
            u.user_principal_name.eq_ignore_ascii_case(username)
                && (grant.alias || u.member_of(&grant.tenant.id))
                && u.password_is(password)
        })
        .ok_or(Aadsts::InvalidUserCredentials)?;
    if user.mfa_required {
        let (resource, _) = user::resource_and_permissions(scope);
        return Err(Aadsts::MfaRequired { resource }.into());
    }
    let tenant_id = if grant.alias {
        &user.tenant
    } else {
        &grant.tenant.id
    };
    let signed_in = SignedIn {
        user,
        tenant_id,
        generation: grant.shared.sign_in.generation(&user.object_id),
    };
    user::respond(grant, signed_in, scope, Issue::default())
}
