//! How a confidential client proves itself: a client secret (form or HTTP Basic) or a signed
//! assertion (certificate or federated).

use axum::http::{HeaderMap, header};
use base64::Engine;
use percent_encoding::percent_decode_str;

use super::Grant;
use crate::assertion::{self, AssertionContext, JWT_BEARER};
use crate::directory::{AppEntry, secret_expired};
use crate::tokens::ClientAuthMethod;
use crate::wire::{Aadsts, EntraError};

/// The credential a token request presented.
#[derive(Debug)]
pub(super) enum Presented {
    Secret(String),
    Assertion { kind: String, value: String },
}

/// The credential in the form, or the secret from HTTP Basic.
pub(super) fn presented(
    grant: &Grant<'_>,
    basic: Option<(String, String)>,
) -> Result<Presented, EntraError> {
    if let Some(value) = grant.field("client_assertion") {
        let kind = grant.field("client_assertion_type").unwrap_or_default();
        return Ok(Presented::Assertion {
            kind: kind.to_string(),
            value: value.to_string(),
        });
    }
    grant
        .field("client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|(_, secret)| secret))
        .map(Presented::Secret)
        .ok_or_else(|| Aadsts::MissingClientCredential.into())
}

/// Checks the presented credential against the application's.
pub(super) fn authenticate(
    grant: &Grant<'_>,
    app: &AppEntry,
    presented: Presented,
) -> Result<ClientAuthMethod, EntraError> {
    match presented {
        Presented::Secret(secret) => check_secret(grant, app, &secret),
        Presented::Assertion { kind, value } => {
            if kind != JWT_BEARER {
                return Err(Aadsts::MalformedAssertion {
                    detail: format!("client_assertion_type must be '{JWT_BEARER}'."),
                }
                .into());
            }
            let ctx = AssertionContext {
                shared: grant.shared,
                directory: grant.directory,
                tenant_id: &grant.tenant.id,
                app,
                origin: &grant.ctx.origin,
                now: grant.now(),
            };
            assertion::validate(&ctx, &value).map(|()| ClientAuthMethod::Assertion)
        }
    }
}

fn check_secret(
    grant: &Grant<'_>,
    app: &AppEntry,
    secret: &str,
) -> Result<ClientAuthMethod, EntraError> {
    let client_id = app.client_id.clone();
    match app.secrets.iter().find(|s| s.value == secret) {
        Some(s) if secret_expired(s, grant.ctx.now) => {
            Err(Aadsts::ExpiredSecret { client_id }.into())
        }
        Some(_) => Ok(ClientAuthMethod::Secret),
        None => Err(Aadsts::InvalidSecret { client_id }.into()),
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then percent-decoding.
fn form_decode(text: &str) -> Option<String> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("app%3A1:s%2Fecret+x");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("app:1".to_string(), "s/ecret x".to_string()))
        );
    }
}
