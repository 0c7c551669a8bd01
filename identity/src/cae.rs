//! Continuous access evaluation (CAE) and resource challenges.
//!
//! A CAE-capable client declares the capability `cp1`; Entra then issues long-lived tokens that
//! resources refuse, with a claims challenge, as soon as the principal is revoked:
//!
//! ```text
//! WWW-Authenticate: Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",
//!     error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiIxNzAwMDAwMDAwIn19fQ=="
//! ```
//!
//! The client gets a new token with those claims (bypassing its cache) and retries once. Two
//! ways to have that done for you:
//!
//! - [`ClaimsChallengeHandler`], for a pipeline you build: pass it to `azure_core`'s
//!   `BearerTokenAuthorizationPolicy` as both its `OnRequest` (it asks for CAE tokens) and its
//!   `OnChallenge` (it answers claims challenges, and Key Vault's tenant-discovery challenge);
//! - [`ContinuousAccessPolicy::install`], for an Azure SDK client that builds its own
//!   authorization policy (for example `azure_security_keyvault_secrets::SecretClient`): it
//!   goes into the client's `ClientOptions`, asks for CAE tokens, and answers claims challenges
//!   beneath the client's own policy.
//!
//! ```no_run
//! # async fn example() -> azure_core::Result<()> {
//! use std::sync::Arc;
//! use azure_core::credentials::TokenCredential;
//! use azure_core::http::ClientOptions;
//! use azure_identity::{ContinuousAccessPolicy, DeveloperToolsCredential};
//!
//! let credential: Arc<dyn TokenCredential> = DeveloperToolsCredential::new(None)?;
//! let mut client_options = ClientOptions::default();
//! ContinuousAccessPolicy::install(credential.clone(), &mut client_options);
//! // Pass `client_options` in the SDK client's options, e.g.
//! // SecretClientOptions { client_options, ..Default::default() }.
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::{AUTHORIZATION, Headers, WWW_AUTHENTICATE};
use azure_core::http::policies::auth::{Authorizer, OnChallenge, OnRequest};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{ClientMethodOptions, ClientOptions, Context, Request, StatusCode};
use base64::Engine;

use crate::TokenRequestExtras;

/// The claims a CAE-capable client sends to declare its capability.
pub(crate) const CAE_CLIENT_CLAIMS: &str = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;

/// The claims part of a cache key: CAE tokens are kept apart from the others.
pub(crate) fn cache_claims(cae: bool) -> Option<&'static str> {
    cae.then_some(CAE_CLIENT_CLAIMS)
}

/// The `claims` a token request sends: the challenge's claims, with the CAE capability merged
/// in when `cae` (a challenge that is not a JSON object is sent as it came).
pub(crate) fn request_claims(challenge: Option<&str>, cae: bool) -> Option<Cow<'_, str>> {
    match (challenge, cae) {
        (None, false) => None,
        (None, true) => Some(Cow::Borrowed(CAE_CLIENT_CLAIMS)),
        (Some(c), false) => Some(Cow::Borrowed(c)),
        (Some(c), true) => {
            let Ok(serde_json::Value::Object(mut claims)) = serde_json::from_str(c) else {
                return Some(Cow::Borrowed(c));
            };
            let access = claims
                .entry("access_token")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(access) = access.as_object_mut() {
                access.insert("xms_cc".into(), serde_json::json!({"values": ["cp1"]}));
            }
            Some(Cow::Owned(serde_json::Value::Object(claims).to_string()))
        }
    }
}

/// One challenge of a `WWW-Authenticate` header: its scheme and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme (`Bearer`, `PoP`, …).
    pub scheme: String,
    /// The parameters, names lower-cased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` header (RFC 9110: challenges separated by commas, parameters
/// as `name=token` or `name="quoted string"`). Never panics; what it cannot read it skips.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let chars: Vec<char> = header.chars().collect();
    let mut at = 0;
    let mut challenges: Vec<Challenge> = Vec::new();
    let is_token = |c: char| !c.is_whitespace() && c != ',' && c != '=' && c != '"';
    let skip = |at: &mut usize, f: &dyn Fn(char) -> bool| {
        while *at < chars.len() && f(chars[*at]) {
            *at += 1;
        }
    };
    let read = |at: &mut usize| {
        let start = *at;
        skip(at, &is_token);
        chars[start..*at].iter().collect::<String>()
    };
    while at < chars.len() {
        skip(&mut at, &|c| c.is_whitespace() || c == ',');
        let word = read(&mut at);
        if word.is_empty() {
            // A stray '=' or '"': step over it.
            at += 1;
            continue;
        }
        skip(&mut at, &char::is_whitespace);
        let is_param = chars.get(at) == Some(&'=') && !challenges.is_empty();
        if !is_param {
            challenges.push(Challenge {
                scheme: word,
                params: Vec::new(),
            });
            continue;
        }
        // `word` is a parameter of the last challenge.
        at += 1;
        skip(&mut at, &char::is_whitespace);
        let value = if chars.get(at) == Some(&'"') {
            at += 1;
            let mut value = String::new();
            while at < chars.len() && chars[at] != '"' {
                if chars[at] == '\\' && at + 1 < chars.len() {
                    at += 1;
                }
                value.push(chars[at]);
                at += 1;
            }
            at += 1;
            value
        } else {
            let start = at;
            skip(&mut at, &|c| !c.is_whitespace() && c != ',');
            chars[start..at].iter().collect()
        };
        if let Some(last) = challenges.last_mut() {
            last.params.push((word.to_ascii_lowercase(), value));
        }
    }
    challenges
}

/// Decodes base64 in either alphabet, padded or not.
fn decode_any_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let standard: String = text
        .trim()
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    engine.decode(standard.trim_end_matches('=')).ok()
}

/// The claims (JSON) of an `insufficient_claims` challenge in a `WWW-Authenticate` header, if
/// it has one.
pub fn claims_from_challenge(header: &str) -> Option<String> {
    parse_challenges(header).iter().find_map(|c| {
        if !c.scheme.eq_ignore_ascii_case("bearer")
            || c.param("error") != Some("insufficient_claims")
        {
            return None;
        }
        let decoded = decode_any_base64(c.param("claims")?)?;
        let text = String::from_utf8(decoded).ok()?;
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .filter(serde_json::Value::is_object)
            .map(|_| text)
    })
}

/// The tenant of a Key Vault-style challenge: the first path segment of its `authorization`
/// (or `authorization_uri`) URL.
fn challenge_tenant(header: &str) -> Option<String> {
    parse_challenges(header).iter().find_map(|c| {
        let uri = c
            .param("authorization")
            .or_else(|| c.param("authorization_uri"))?;
        let url = url::Url::parse(uri).ok()?;
        let tenant = url.path_segments()?.next()?.to_string();
        (!tenant.is_empty()).then_some(tenant)
    })
}

/// Request options carrying `extras` besides what `context` had.
fn options_with(context: &Context<'_>, extras: TokenRequestExtras) -> TokenRequestOptions<'static> {
    let mut context = context.to_owned();
    context.insert(extras);
    TokenRequestOptions {
        method_options: ClientMethodOptions { context },
    }
}

/// The error for a challenge this crate cannot answer.
fn unanswerable(header: &str) -> Error {
    let error = parse_challenges(header)
        .iter()
        .find_map(|c| c.param("error").map(str::to_string));
    Error::with_message(
        ErrorKind::HttpResponse {
            status: StatusCode::Unauthorized,
            error_code: error,
            raw_response: None,
        },
        format!(
            "the resource answered 401 with a challenge that cannot be answered with a new token: {header}"
        ),
    )
}

/// Answers resource challenges for `azure_core`'s `BearerTokenAuthorizationPolicy`: asks for
/// CAE tokens (`OnRequest`), answers `insufficient_claims` challenges with a token for their
/// claims, and Key Vault's tenant-discovery challenge with a token from the tenant it names
/// (the credential must allow that tenant). Anything else is returned as an error naming the
/// challenge.
///
/// ```
/// use std::sync::Arc;
/// use azure_core::credentials::TokenCredential;
/// use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
/// use azure_identity::{ClaimsChallengeHandler, ClientSecretCredential};
///
/// # fn example() -> azure_core::Result<()> {
/// let credential: Arc<dyn TokenCredential> =
///     ClientSecretCredential::new("tenant", "client".into(), "secret".into(), None)?;
/// let handler = ClaimsChallengeHandler::new(["https://vault.azure.net/.default"]);
/// let policy = BearerTokenAuthorizationPolicy::new(credential, Vec::<String>::new())
///     .with_on_request(handler.clone())
///     .with_on_challenge(handler);
/// # let _ = policy;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClaimsChallengeHandler {
    scopes: Vec<String>,
}

impl ClaimsChallengeHandler {
    /// A handler that asks for `scopes`.
    pub fn new<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> Arc<Self> {
        Arc::new(Self {
            scopes: scopes.into_iter().map(Into::into).collect(),
        })
    }

    fn scopes(&self) -> Vec<&str> {
        self.scopes.iter().map(String::as_str).collect()
    }
}

#[async_trait]
impl OnRequest for ClaimsChallengeHandler {
    async fn on_request(
        &self,
        context: &mut Context,
        request: &mut Request,
        authorizer: &dyn Authorizer,
    ) -> azure_core::Result<()> {
        let extras = TokenRequestExtras {
            enable_cae: true,
            ..Default::default()
        };
        authorizer
            .authorize(request, &self.scopes(), options_with(context, extras))
            .await
    }
}

#[async_trait]
impl OnChallenge for ClaimsChallengeHandler {
    async fn on_challenge(
        &self,
        context: &Context,
        request: &mut Request,
        authorizer: &dyn Authorizer,
        headers: &Headers,
    ) -> azure_core::Result<()> {
        let header = headers
            .get_optional_str(&WWW_AUTHENTICATE)
            .unwrap_or_default();
        let extras = if let Some(claims) = claims_from_challenge(header) {
            TokenRequestExtras {
                claims: Some(claims),
                enable_cae: true,
                ..Default::default()
            }
        } else if let Some(tenant) = challenge_tenant(header) {
            TokenRequestExtras {
                tenant_id: Some(tenant),
                enable_cae: true,
                ..Default::default()
            }
        } else {
            return Err(unanswerable(header));
        };
        authorizer
            .authorize(request, &self.scopes(), options_with(context, extras))
            .await
    }
}

/// How many refused tokens [`ContinuousAccessPolicy`] remembers the replacement of.
const REPLACEMENTS: usize = 16;

/// Continuous access evaluation for Azure SDK clients that build their own authorization
/// policy. [`install`](Self::install) puts two policies into the client's options: one before
/// the client's authorization policy that asks the credential for CAE tokens, and this one
/// after it, which answers a claims challenge: it gets a token with the challenge's claims
/// (for the refused token's audience and tenant), retries the request once, and from then on
/// sends the new token in place of the refused one. Any other response, 401s included, is
/// returned unchanged.
pub struct ContinuousAccessPolicy {
    credential: Arc<dyn TokenCredential>,
    /// Refused `Authorization` value → the token that replaced it. Never shown by `Debug`.
    replaced: Mutex<Vec<(String, AccessToken)>>,
}

impl std::fmt::Debug for ContinuousAccessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let replaced = self.replaced.lock().map(|r| r.len()).unwrap_or(0);
        f.debug_struct("ContinuousAccessPolicy")
            .field("credential", &self.credential)
            .field("replaced_tokens", &replaced)
            .finish()
    }
}

/// The per-call half of [`ContinuousAccessPolicy`]: marks every request's context so the
/// credential issues CAE tokens.
#[derive(Debug)]
struct AskForCae;

#[async_trait]
impl Policy for AskForCae {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let mut extras = ctx
            .value::<TokenRequestExtras>()
            .cloned()
            .unwrap_or_default();
        extras.enable_cae = true;
        let ctx = ctx.clone().with_value(extras);
        next[0].send(&ctx, request, &next[1..]).await
    }
}

impl ContinuousAccessPolicy {
    /// The policy over `credential` (the one the client authorizes with).
    pub fn new(credential: Arc<dyn TokenCredential>) -> Self {
        Self {
            credential,
            replaced: Mutex::new(Vec::new()),
        }
    }

    /// Adds CAE to a client's `options`: a per-call policy asking for CAE tokens and, per try,
    /// this policy answering claims challenges with `credential`.
    pub fn install(credential: Arc<dyn TokenCredential>, options: &mut ClientOptions) {
        options.per_call_policies.push(Arc::new(AskForCae));
        options
            .per_try_policies
            .push(Arc::new(Self::new(credential)));
    }

    fn replacement(&self, authorization: &str) -> Option<AccessToken> {
        let replaced = self.replaced.lock().unwrap_or_else(|e| e.into_inner());
        replaced
            .iter()
            .find(|(old, _)| old == authorization)
            .map(|(_, new)| new.clone())
    }

    fn remember(&self, authorization: String, token: AccessToken) {
        let mut replaced = self.replaced.lock().unwrap_or_else(|e| e.into_inner());
        replaced.retain(|(old, _)| *old != authorization);
        if replaced.len() >= REPLACEMENTS {
            replaced.remove(0);
        }
        replaced.push((authorization, token));
    }

    /// A token for the refused token's audience and tenant, with the challenge's claims.
    async fn answer(
        &self,
        ctx: &Context<'_>,
        refused: &str,
        claims: String,
    ) -> Option<azure_core::Result<AccessToken>> {
        // Unverified: only to learn where the refused token was for.
        let token = refused.strip_prefix("Bearer ")?;
        let payload: serde_json::Map<String, serde_json::Value> =
            crate::user::b64_json(token.split('.').nth(1)?)?;
        let audience = payload.get("aud")?.as_str()?.trim_end_matches('/');
        let scope = format!("{audience}/.default");
        let tenant = payload
            .get("tid")
            .and_then(|t| t.as_str())
            .map(str::to_string);
        let extras = TokenRequestExtras {
            tenant_id: tenant,
            claims: Some(claims),
            enable_cae: true,
        };
        Some(
            self.credential
                .get_token(&[&scope], Some(options_with(ctx, extras)))
                .await,
        )
    }
}

#[async_trait]
impl Policy for ContinuousAccessPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let authorization = request
            .headers()
            .get_optional_string(&AUTHORIZATION)
            .unwrap_or_default();
        if let Some(token) = self.replacement(&authorization) {
            request.insert_header(AUTHORIZATION, format!("Bearer {}", token.token.secret()));
        }
        let sent = request
            .headers()
            .get_optional_string(&AUTHORIZATION)
            .unwrap_or_default();
        let response = next[0].send(ctx, request, &next[1..]).await?;
        if response.status() != StatusCode::Unauthorized {
            return Ok(response);
        }
        let Some(claims) = response
            .headers()
            .get_optional_str(&WWW_AUTHENTICATE)
            .and_then(claims_from_challenge)
        else {
            return Ok(response);
        };
        let Some(token) = self.answer(ctx, &sent, claims).await else {
            return Ok(response);
        };
        let token = token?;
        request.insert_header(AUTHORIZATION, format!("Bearer {}", token.token.secret()));
        self.remember(authorization, token);
        request.body_mut().reset().await?;
        next[0].send(ctx, request, &next[1..]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_vault_and_cae_challenges_parse() {
        let kv = r#"Bearer authorization="https://login.example/tenant-1", resource="https://vault.azure.net""#;
        let parsed = parse_challenges(kv);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].scheme, "Bearer");
        assert_eq!(parsed[0].param("resource"), Some("https://vault.azure.net"));
        assert_eq!(challenge_tenant(kv).as_deref(), Some("tenant-1"));
        let two = r#"PoP nonce="abc", Bearer realm="", error=insufficient_claims, claims="e30=""#;
        let parsed = parse_challenges(two);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].param("error"), Some("insufficient_claims"));
        assert_eq!(claims_from_challenge(two).as_deref(), Some("{}"));
    }

    #[test]
    fn claims_decode_from_either_alphabet_padded_or_not() {
        let claims = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
        let engines = [
            base64::engine::general_purpose::STANDARD.encode(claims),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(claims),
            base64::engine::general_purpose::URL_SAFE.encode(claims),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims),
        ];
        for encoded in engines {
            let header = format!(
                r#"Bearer realm="", authorization_uri="https://x/t/oauth2/authorize", error="insufficient_claims", claims="{encoded}""#
            );
            assert_eq!(
                claims_from_challenge(&header).as_deref(),
                Some(claims),
                "{encoded}"
            );
        }
        assert_eq!(
            claims_from_challenge(r#"Bearer error="insufficient_claims", claims="!!!""#),
            None
        );
        assert_eq!(
            claims_from_challenge(r#"Bearer error="invalid_token""#),
            None
        );
    }

    #[test]
    fn cae_merges_the_capability_into_challenge_claims() {
        assert_eq!(request_claims(None, false), None);
        assert_eq!(
            request_claims(None, true).as_deref(),
            Some(CAE_CLIENT_CLAIMS)
        );
        let merged = request_claims(Some(r#"{"access_token":{"nbf":{"essential":true}}}"#), true)
            .unwrap()
            .into_owned();
        let value: serde_json::Value = serde_json::from_str(&merged).unwrap();
        assert_eq!(value["access_token"]["nbf"]["essential"], true);
        assert_eq!(value["access_token"]["xms_cc"]["values"][0], "cp1");
        assert_eq!(
            request_claims(Some("not json"), true).as_deref(),
            Some("not json")
        );
    }

    proptest::proptest! {
        #[test]
        fn the_challenge_parser_never_panics(header in ".{0,200}") {
            let _ = parse_challenges(&header);
            let _ = claims_from_challenge(&header);
            let _ = challenge_tenant(&header);
        }

        #[test]
        fn quoted_values_round_trip(value in "[a-zA-Z0-9 ,=:/._-]{0,40}") {
            let header = format!(r#"Bearer a="{value}", b=tok"#);
            let parsed = parse_challenges(&header);
            proptest::prop_assert_eq!(parsed.len(), 1);
            proptest::prop_assert_eq!(parsed[0].param("a"), Some(value.as_str()));
            proptest::prop_assert_eq!(parsed[0].param("b"), Some("tok"));
        }
    }
}
