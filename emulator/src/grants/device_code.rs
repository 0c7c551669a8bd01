//! The device-code grant (`urn:ietf:params:oauth:grant-type:device_code`, or the bare
//! `device_code`): a client polls with its device code until the user approves it on the
//! `/devicelogin` page or through the control plane. Each poll before then answers
//! `authorization_pending`; a declined or expired code ends the flow; an approved code is good
//! for one token response.

use super::user::{self, Issue, SignedIn};
use super::{Grant, TokenResponse};
use crate::sign_in::store::{DeviceStatus, Poll};
use crate::wire::{Aadsts, EntraError};

pub(super) fn issue(grant: &Grant<'_>) -> Result<TokenResponse, EntraError> {
    // v1 clients (ADAL) send the device code as `code`.
    let device_code = grant
        .field("device_code")
        .or_else(|| grant.field("code"))
        .ok_or(Aadsts::MissingParameter {
            name: "device_code",
        })?;
    let approved = match grant.shared.sign_in.poll(device_code, grant.now()) {
        Poll::Approved(code) => code,
        Poll::Pending => return Err(Aadsts::AuthorizationPending.into()),
        Poll::Declined => return Err(Aadsts::AuthorizationDeclined.into()),
        Poll::Expired => return Err(Aadsts::DeviceCodeExpired.into()),
        Poll::Unknown | Poll::AlreadyRedeemed => return Err(Aadsts::BadVerificationCode.into()),
    };
    if !approved.client_id.eq_ignore_ascii_case(&grant.client_id) {
        return Err(Aadsts::BadVerificationCode.into());
    }
    let DeviceStatus::Approved {
        user,
        tenant_id,
        generation,
    } = &approved.status
    else {
        return Err(Aadsts::BadVerificationCode.into());
    };
    let user = grant
        .directory
        .user(user)
        .ok_or(Aadsts::BadVerificationCode)?;
    let signed_in = SignedIn {
        user,
        tenant_id,
        generation: *generation,
    };
    user::respond(grant, signed_in, &approved.scope, Issue::default())
}
