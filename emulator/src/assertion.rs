//! Client-assertion validation: certificate-signed assertions and federated (workload identity)
//! assertions, in the order Entra checks them, each failure mapped to its AADSTS code.

use crate::crypto::{self, ParsedJwt, RsaPublicKey};
use crate::directory::{AppEntry, Directory};
use crate::state::{Ring, Shared};
use crate::wire::{Aadsts, EntraError};

/// The `client_assertion_type` for JWT bearer assertions.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The request an assertion arrived with.
#[derive(Debug)]
pub(crate) struct AssertionContext<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) directory: &'a Directory,
    pub(crate) tenant_id: &'a str,
    pub(crate) app: &'a AppEntry,
    /// The request's `scheme://host[:port]`.
    pub(crate) origin: &'a str,
    pub(crate) now: i64,
}

/// Validates `assertion` for the context's application.
pub(crate) fn validate(ctx: &AssertionContext<'_>, assertion: &str) -> Result<(), EntraError> {
    let jwt = ParsedJwt::parse(assertion).ok_or_else(|| {
        EntraError::from(Aadsts::MalformedAssertion {
            detail: "Unable to parse the client assertion as a JWT.".to_string(),
        })
    })?;
    let alg = jwt.header_str("alg").unwrap_or_default();
    if alg != "RS256" && alg != "PS256" {
        return Err(Aadsts::MalformedAssertion {
            detail: format!(
                "The assertion's algorithm '{alg}' is not supported; use RS256 or PS256."
            ),
        }
        .into());
    }
    let iss = jwt.claim_str("iss").unwrap_or_default();
    if iss.eq_ignore_ascii_case(&ctx.app.client_id) {
        validate_certificate_assertion(ctx, &jwt)
    } else {
        validate_federated_assertion(ctx, &jwt, iss)
    }
}

fn thumbprint_text(jwt: &ParsedJwt) -> String {
    jwt.header_str("x5t#S256")
        .or_else(|| jwt.header_str("x5t"))
        .or_else(|| jwt.header_str("kid"))
        .unwrap_or("")
        .to_string()
}

fn validate_certificate_assertion(
    ctx: &AssertionContext<'_>,
    jwt: &ParsedJwt,
) -> Result<(), EntraError> {
    let app = ctx.app;
    let thumb = thumbprint_text(jwt);
    let by_sha256 = jwt.header_str("x5t#S256").and_then(crypto::b64_any);
    let by_sha1 = jwt.header_str("x5t").and_then(crypto::b64_any);
    let cert = app.certificates.iter().find(|c| {
        by_sha256.as_deref() == Some(c.sha256.as_slice())
            || by_sha1.as_deref() == Some(c.sha1.as_slice())
    });
    let id = app.client_id.as_str();
    let Some(cert) = cert else {
        return Err(signature_error("The key was not found.", &thumb, id));
    };
    if cert.not_after < ctx.now {
        return Err(signature_error("The key used is expired.", &thumb, id));
    }
    if !jwt.verify_with(&cert.public) {
        return Err(signature_error(
            "The signature does not verify with the key.",
            &thumb,
            id,
        ));
    }
    check_time_window(ctx, jwt)?;
    if !audience_is_token_endpoint(ctx, jwt) {
        return Err(Aadsts::AssertionAudience.into());
    }
    let sub = jwt.claim_str("sub").unwrap_or_default();
    if !sub.eq_ignore_ascii_case(id) {
        return Err(Aadsts::AssertionSubject.into());
    }
    Ok(())
}

fn signature_error(reason: &str, thumbprint: &str, client_id: &str) -> EntraError {
    Aadsts::CertificateSignature {
        reason: reason.to_string(),
        thumbprint: thumbprint.to_string(),
        client_id: client_id.to_string(),
    }
    .into()
}

/// Seconds since the epoch as RFC 3339, as Entra's messages show times.
pub(crate) fn format_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

fn check_time_window(ctx: &AssertionContext<'_>, jwt: &ParsedJwt) -> Result<(), EntraError> {
    let skew = ctx.directory.settings().clock_skew_secs as i64;
    let exp = jwt.claim_time("exp");
    let nbf = jwt.claim_time("nbf").or_else(|| jwt.claim_time("iat"));
    let too_early = nbf.is_some_and(|nbf| ctx.now + skew < nbf);
    let expired = exp.is_none_or(|exp| ctx.now - skew >= exp);
    if too_early || expired {
        return Err(Aadsts::AssertionTime {
            now: format_time(ctx.now),
            not_before: nbf.map(format_time).unwrap_or_default(),
            expires: exp.map(format_time).unwrap_or_default(),
        }
        .into());
    }
    Ok(())
}

/// `aud` must name this tenant's token endpoint (v1 or v2). The host must be the one the
/// request came to unless the emulator is lenient, where any host is accepted because clients
/// may build it from a configured authority that differs from the address they connect to.
fn audience_is_token_endpoint(ctx: &AssertionContext<'_>, jwt: &ParsedJwt) -> bool {
    let strict = ctx.directory.settings().strict;
    let matches = |aud: &str| {
        let Ok(url) = url::Url::parse(aud) else {
            return false;
        };
        let origin = url.origin().ascii_serialization();
        if strict && !origin.eq_ignore_ascii_case(ctx.origin) {
            return false;
        }
        let mut segments = url.path().trim_end_matches('/').split('/').skip(1);
        let tenant = segments.next().unwrap_or_default();
        let rest: Vec<&str> = segments.collect();
        let endpoint = rest == ["oauth2", "v2.0", "token"] || rest == ["oauth2", "token"];
        endpoint
            && ctx
                .directory
                .tenant(tenant)
                .is_ok_and(|t| t.id == ctx.tenant_id)
    };
    match jwt.claims.get("aud") {
        Some(serde_json::Value::String(aud)) => matches(aud),
        Some(serde_json::Value::Array(auds)) => auds.iter().filter_map(|a| a.as_str()).any(matches),
        _ => false,
    }
}

fn is_entra_issuer(ctx: &AssertionContext<'_>, iss: &str) -> bool {
    iss.starts_with("https://sts.windows.net/")
        || iss.starts_with("https://login.microsoftonline.com/")
        || iss.starts_with(&format!("{}/", ctx.origin))
}

fn issuer_keys(ctx: &AssertionContext<'_>, iss: &str) -> Vec<RsaPublicKey> {
    let own = |ring| {
        ctx.shared
            .published_keys(ring)
            .iter()
            .map(|k| k.public().clone())
            .collect()
    };
    if iss == ctx.directory.seed.kubernetes.issuer {
        own(Ring::Kubernetes)
    } else if iss.starts_with("https://vstoken.dev.azure.com/") {
        own(Ring::Pipelines)
    } else {
        ctx.directory
            .external_issuer_keys(iss)
            .map(<[RsaPublicKey]>::to_vec)
            .unwrap_or_default()
    }
}

/// Among the credentials that trust the issuer, one must name the assertion's subject and
/// one of its audiences.
fn match_subject_and_audience(
    jwt: &ParsedJwt,
    candidates: Vec<&crate::config::FederatedCredential>,
) -> Result<(), EntraError> {
    let sub = jwt.claim_str("sub").unwrap_or_default();
    let candidates: Vec<_> = candidates
        .into_iter()
        .filter(|f| f.subject == sub)
        .collect();
    if candidates.is_empty() {
        return Err(Aadsts::FederatedSubject {
            subject: sub.to_string(),
        }
        .into());
    }
    let audiences: Vec<&str> = match jwt.claims.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => vec![],
    };
    if !candidates
        .iter()
        .any(|f| audiences.contains(&f.audience.as_str()))
    {
        return Err(Aadsts::FederatedAudience {
            audience: audiences.join(","),
        }
        .into());
    }
    Ok(())
}

fn validate_federated_assertion(
    ctx: &AssertionContext<'_>,
    jwt: &ParsedJwt,
    iss: &str,
) -> Result<(), EntraError> {
    if is_entra_issuer(ctx, iss) {
        return Err(Aadsts::EntraTokenAsAssertion.into());
    }
    let candidates: Vec<_> = ctx
        .app
        .federated
        .iter()
        .filter(|f| f.issuer == iss)
        .collect();
    if candidates.is_empty() {
        return Err(Aadsts::FederatedIssuer {
            issuer: iss.to_string(),
        }
        .into());
    }
    let keys = issuer_keys(ctx, iss);
    if !keys.iter().any(|k| jwt.verify_with(k)) {
        let reason = if keys.is_empty() {
            "The issuer's signing keys are not known to the emulator."
        } else {
            "The key was not found."
        };
        let thumb = thumbprint_text(jwt);
        let id = ctx.app.client_id.as_str();
        return Err(Aadsts::FederatedSignature {
            reason: reason.to_string(),
            thumbprint: thumb,
            client_id: id.to_string(),
        }
        .into());
    }
    check_time_window(ctx, jwt)?;
    match_subject_and_audience(jwt, candidates)?;
    Ok(())
}
