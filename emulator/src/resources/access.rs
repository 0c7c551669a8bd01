//! Bearer-token validation as an Azure resource provider does it: the signature against the
//! emulator's token keys (the current key and rotated-out keys in their grace period), the
//! issuer and tenant, the audience, and the lifetime with clock skew. Then continuous access
//! evaluation: a revoked principal's older CAE token is refused with a claims challenge.
//!
//! Verified signatures are remembered for a minute (never beyond the token's expiry), so a
//! resource under load does not verify RSA signatures on every request; the time, audience,
//! issuer and revocation checks run on every request.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::crypto::ParsedJwt;
use crate::directory::Directory;
use crate::state::{Ring, Shared};

/// How long a verified signature is remembered.
const VERIFIED_FOR_SECS: i64 = 60;
/// How many verified tokens are remembered at most.
const CAPACITY: usize = 4096;

/// The principal a valid token names.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// `oid`.
    pub(crate) object_id: String,
    /// `appid` (v1) or `azp` (v2): the client.
    pub(crate) app_id: String,
    /// `upn` or `preferred_username` of a user token.
    pub(crate) upn: Option<String>,
    /// `tid`.
    pub(crate) tenant_id: String,
    /// `iss`.
    pub(crate) issuer: String,
    /// `aud`.
    pub(crate) audience: String,
    /// `iat`, `nbf`, `exp`.
    pub(crate) issued_at: i64,
    pub(crate) not_before: i64,
    pub(crate) expires: i64,
    /// An app-only token (`idtyp` app, or no user claims).
    pub(crate) is_app: bool,
    /// Issued to a CAE-capable client (`xms_cc` contains `cp1`).
    pub(crate) cae: bool,
}

impl Caller {
    fn from_claims(jwt: &ParsedJwt) -> Self {
        let text = |name: &str| jwt.claim_str(name).unwrap_or_default().to_string();
        let upn = jwt
            .claim_str("upn")
            .or_else(|| jwt.claim_str("preferred_username"))
            .map(str::to_string);
        let app_id = jwt
            .claim_str("appid")
            .or_else(|| jwt.claim_str("azp"))
            .unwrap_or_default()
            .to_string();
        let is_app = jwt.claim_str("idtyp") == Some("app") || jwt.claims.get("scp").is_none();
        let cae = jwt
            .claims
            .get("xms_cc")
            .and_then(|v| v.as_array())
            .is_some_and(|caps| {
                caps.iter()
                    .any(|c| c.as_str().is_some_and(|c| c.eq_ignore_ascii_case("cp1")))
            });
        Self {
            object_id: text("oid"),
            app_id,
            upn,
            tenant_id: text("tid"),
            issuer: text("iss"),
            audience: text("aud"),
            issued_at: jwt.claim_time("iat").unwrap_or_default(),
            not_before: jwt.claim_time("nbf").unwrap_or_default(),
            expires: jwt.claim_time("exp").unwrap_or_default(),
            is_app,
            cae,
        }
    }

    /// The identifiers a revocation or role assignment may name: the object id, and the client
    /// id of an app token or the UPN of a user token.
    pub(crate) fn ids(&self) -> Vec<&str> {
        let mut ids = vec![self.object_id.as_str()];
        if self.is_app {
            ids.push(&self.app_id);
        }
        if let Some(upn) = &self.upn {
            ids.push(upn);
        }
        ids.retain(|id| !id.is_empty());
        ids
    }

    /// `appid=…;oid=…;iss=…`, as Key Vault names a caller.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!(
            "appid={};oid={};iss={}",
            self.app_id, self.object_id, self.issuer
        );
        if let Some(upn) = &self.upn {
            text.push_str(&format!(";upn={upn}"));
        }
        text
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a JWT.
    Malformed,
    /// No published key verifies the signature.
    Signature {
        /// The token's `kid`.
        kid: String,
    },
    /// `exp` (plus skew) has passed.
    Expired {
        /// `exp`.
        expires: i64,
    },
    /// `nbf` (less skew) is still ahead.
    NotYetValid {
        /// `nbf`.
        not_before: i64,
    },
    /// `aud` is not the resource's.
    Audience {
        /// The token's `aud`.
        found: String,
        /// The audience expected.
        expected: String,
    },
    /// `iss` is not an issuer of the resource's tenant.
    Issuer {
        /// The token's `iss`.
        found: String,
        /// The issuers accepted.
        expected: Vec<String>,
    },
    /// A CAE token issued at or before its principal's revocation.
    Revoked {
        /// The revocation's second.
        revoked_at: i64,
    },
}

impl Rejection {
    /// The check that failed, for the request log.
    pub(crate) fn check(&self) -> &'static str {
        match self {
            Rejection::Missing => "token_missing",
            Rejection::Malformed => "token_malformed",
            Rejection::Signature { .. } => "signature",
            Rejection::Expired { .. } => "expired",
            Rejection::NotYetValid { .. } => "not_yet_valid",
            Rejection::Audience { .. } => "audience",
            Rejection::Issuer { .. } => "issuer",
            Rejection::Revoked { .. } => "revoked",
        }
    }
}

/// What a resource accepts.
#[derive(Debug)]
pub(crate) struct Requirements<'a> {
    /// The resource's tenant; `None`: any tenant the emulator knows (a multi-tenant resource
    /// such as Resource Manager), as long as the token's issuer is its own tenant's.
    pub(crate) tenant_id: Option<&'a str>,
    /// Accepted `aud` values (identifier URI, with and without a trailing slash, and app id).
    pub(crate) audiences: &'a [&'a str],
}

/// Tokens whose signature verified recently: token → (claims, verified until). `Debug` shows
/// how many, never the tokens.
#[derive(Default)]
pub(crate) struct VerifiedTokens(RwLock<HashMap<String, (Arc<Caller>, i64)>>);

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|m| m.len()).unwrap_or(0);
        write!(f, "VerifiedTokens({n} tokens)")
    }
}

impl VerifiedTokens {
    fn get(&self, token: &str, now: i64) -> Option<Arc<Caller>> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(token)
            .filter(|(_, until)| *until > now)
            .map(|(caller, _)| caller.clone())
    }

    fn insert(&self, token: &str, caller: Arc<Caller>, now: i64) {
        let until = (now + VERIFIED_FOR_SECS).min(caller.expires.max(now));
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(token.to_string(), (caller, until));
    }

    /// Forgets every verified token (after a key rotation or reset).
    pub(crate) fn clear(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The bearer token of an `Authorization` header value, if it has one.
pub(crate) fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Validates the request's bearer token against `req`; the caller, or why not.
pub(crate) fn authenticate(
    shared: &Shared,
    authorization: Option<&str>,
    req: &Requirements<'_>,
) -> Result<Arc<Caller>, Rejection> {
    let token = bearer(authorization).ok_or(Rejection::Missing)?;
    let now = shared.now().unix_timestamp();
    let caller = match shared.verified.get(token, now) {
        Some(caller) => caller,
        None => {
            let jwt = ParsedJwt::parse(token).ok_or(Rejection::Malformed)?;
            let signed = shared
                .published_keys(Ring::Tokens)
                .iter()
                .any(|k| jwt.verify_with(k.public()));
            if !signed {
                let kid = jwt.header_str("kid").unwrap_or_default().to_string();
                return Err(Rejection::Signature { kid });
            }
            let caller = Arc::new(Caller::from_claims(&jwt));
            shared.verified.insert(token, caller.clone(), now);
            caller
        }
    };
    check_claims(shared, &shared.directory(), &caller, req, now)?;
    Ok(caller)
}

/// The checks that run on every request: lifetime, audience, issuer, revocation.
fn check_claims(
    shared: &Shared,
    directory: &Directory,
    caller: &Caller,
    req: &Requirements<'_>,
    now: i64,
) -> Result<(), Rejection> {
    let skew = directory.settings().clock_skew_secs as i64;
    if caller.expires + skew <= now {
        return Err(Rejection::Expired {
            expires: caller.expires,
        });
    }
    if caller.not_before - skew > now {
        return Err(Rejection::NotYetValid {
            not_before: caller.not_before,
        });
    }
    if !req
        .audiences
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&caller.audience))
    {
        return Err(Rejection::Audience {
            found: caller.audience.clone(),
            expected: req
                .audiences
                .first()
                .copied()
                .unwrap_or_default()
                .to_string(),
        });
    }
    let tenant = expected_tenant(directory, caller, req);
    let tenant_ok = caller.tenant_id.eq_ignore_ascii_case(&tenant);
    if !tenant_ok || !issued_by(shared, &tenant, &caller.issuer) {
        return Err(Rejection::Issuer {
            found: caller.issuer.clone(),
            expected: issuers(shared, &tenant),
        });
    }
    if caller.cae
        && let Some(revoked_at) = shared.revocations.revoked_at(caller.ids())
        && caller.issued_at <= revoked_at
    {
        return Err(Rejection::Revoked { revoked_at });
    }
    Ok(())
}

/// The tenant whose issuers a token must come from: the resource's, or (a multi-tenant
/// resource) the token's own when the emulator knows it, else the home tenant (so the error
/// names real issuers).
fn expected_tenant<'a>(
    directory: &Directory,
    caller: &'a Caller,
    req: &Requirements<'a>,
) -> std::borrow::Cow<'a, str> {
    if let Some(tenant) = req.tenant_id {
        return tenant.into();
    }
    if directory.tenant(&caller.tenant_id).is_ok() {
        return caller.tenant_id.as_str().into();
    }
    directory
        .home_tenant()
        .map(|t| t.id.clone())
        .unwrap_or_default()
        .into()
}

/// Whether `issuer` is one of [`issuers`] of `tenant`, compared in place and
/// case-insensitively (no allocation on the path every request takes).
fn issued_by(shared: &Shared, tenant: &str, issuer: &str) -> bool {
    let is_tenant = |rest: Option<&str>, suffix: &str| {
        rest.and_then(|r| strip_suffix_ci(r, suffix))
            .is_some_and(|t| t.eq_ignore_ascii_case(tenant))
    };
    let v2_from = |origin: &str| {
        let rest = strip_prefix_ci(issuer, origin).and_then(|r| r.strip_prefix('/'));
        is_tenant(rest, "/v2.0")
    };
    is_tenant(strip_prefix_ci(issuer, "https://sts.windows.net/"), "/")
        || shared.https_origin.get().is_some_and(|origin| v2_from(origin))
        // Tokens issued through transparent mode name Entra's public authority.
        || v2_from(crate::routes::PUBLIC_AUTHORITY)
}

fn strip_prefix_ci<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn strip_suffix_ci<'t>(text: &'t str, suffix: &str) -> Option<&'t str> {
    let at = text.len().checked_sub(suffix.len())?;
    let tail = text.get(at..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &text[..at])
}

/// The issuers of `tenant`'s tokens: v1 (`sts.windows.net`) and v2 (the emulator's authority).
fn issuers(shared: &Shared, tenant: &str) -> Vec<String> {
    let mut issuers = vec![crate::tokens::v1_issuer(tenant)];
    if let Some(origin) = shared.https_origin.get() {
        issuers.push(crate::tokens::v2_issuer(origin, tenant));
    }
    issuers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_affixes() {
        assert_eq!(strip_prefix_ci("HTTPS://x/t", "https://x/"), Some("t"));
        assert_eq!(strip_suffix_ci("t/V2.0", "/v2.0"), Some("t"));
        assert_eq!(strip_prefix_ci("ab", "abc"), None);
        assert_eq!(strip_suffix_ci("é", "/v2.0"), None);
    }

    #[test]
    fn bearer_takes_the_token_of_a_bearer_header_only() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer   abc ")), Some("abc"));
        assert_eq!(bearer(Some("PoP abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(Some("Bearer  ")), None);
        assert_eq!(bearer(None), None);
    }
}
