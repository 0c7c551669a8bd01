//! What every confidential-client credential shares: tenant and client ids, the Entra client,
//! the token cache, per-request tenant and claims, and error wrapping. Credentials supply only
//! how to authenticate the token request.

use std::future::Future;

use azure_core::credentials::{AccessToken, TokenRequestOptions};
use azure_core::http::ClientOptions;

use crate::cache::{CacheKey, TokenCache};
use crate::entra::EntraClient;
use crate::errors::{
    authentication_error, credential_error, require_non_empty, validate_scopes, validate_tenant_id,
};
use crate::os::Os;
use crate::token::{FetchRequest, FetchedToken};
use crate::user::persistent::AppKey;

/// Per-request settings beyond upstream's [`TokenRequestOptions`] (which carries none), passed
/// in its context.
///
/// - `tenant_id`: the cache keeps each tenant's tokens apart.
/// - `enable_cae`: continuous access evaluation. The request declares the client capability
///   `cp1` (`claims={"access_token":{"xms_cc":{"values":["cp1"]}}}`; managed identity sends
///   `xms_cc=cp1`), so Entra issues a CAE token: long-lived, and refused by resources with a
///   claims challenge once the principal is revoked. The cache keeps CAE and non-CAE tokens
///   apart.
/// - `claims`: a claims challenge (JSON) from a resource's `WWW-Authenticate` header. A request
///   with claims always goes to Entra (the cached token is what the resource refused); the new
///   token then replaces the cached one. [`crate::ClaimsChallengeHandler`] and
///   [`crate::ContinuousAccessPolicy`] set it for you.
///
/// ```
/// use azure_core::credentials::TokenRequestOptions;
/// use azure_identity::TokenRequestExtras;
///
/// let mut options = TokenRequestOptions::default();
/// options.method_options.context.insert(TokenRequestExtras {
///     tenant_id: Some("22222222-2222-2222-2222-222222222222".into()),
///     claims: Some(r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#.into()),
///     enable_cae: true,
/// });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequestExtras {
    /// Request the token from this tenant instead of the configured one. The credential must
    /// allow it through its options' `additionally_allowed_tenants`.
    pub tenant_id: Option<String>,
    /// A claims challenge (JSON), e.g. from a `WWW-Authenticate` header, sent as `claims`.
    pub claims: Option<String>,
    /// Ask for a CAE token (declare the client capability `cp1`).
    pub enable_cae: bool,
}

/// The future `TokenCredential::get_token` returns (what `#[async_trait]` would generate).
pub(crate) type TokenFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = azure_core::Result<AccessToken>> + Send + 'a>>;

/// Default request options, shared so that a call without options builds nothing.
pub(crate) fn default_options() -> &'static TokenRequestOptions<'static> {
    static DEFAULT: std::sync::OnceLock<TokenRequestOptions<'static>> = std::sync::OnceLock::new();
    DEFAULT.get_or_init(TokenRequestOptions::default)
}

/// The caller's options, or the shared defaults.
pub(crate) fn options_or_default<'a>(
    options: &'a Option<TokenRequestOptions<'a>>,
) -> &'a TokenRequestOptions<'a> {
    options.as_ref().unwrap_or_else(|| default_options())
}

/// Identification of a credential in errors and logs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Label {
    pub(crate) name: &'static str,
    /// The troubleshooting-guide fragment; `None` for no link.
    pub(crate) fragment: Option<&'static str>,
}

/// The shared core.
#[derive(Debug)]
pub(crate) struct Confidential {
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) client: EntraClient,
    pub(crate) os: Os,
    allowed_tenants: Vec<String>,
    cache: TokenCache,
    /// The application's tokens across runs and programs (MSAL's cache), if configured.
    persistent: Option<crate::user::persistent::PersistentCache>,
    label: Label,
}

impl Confidential {
    /// Validates the identifiers and resolves the authority.
    pub(crate) fn new(
        label: Label,
        tenant_id: &str,
        client_id: &str,
        client_options: ClientOptions,
        allowed_tenants: Vec<String>,
        os: Os,
    ) -> azure_core::Result<Self> {
        validate_tenant_id(tenant_id)?;
        require_non_empty(client_id, "client ID")?;
        let client = EntraClient::new(client_options, &os)?;
        Ok(Self {
            tenant_id: tenant_id.to_string(),
            client_id: client_id.to_string(),
            client,
            os,
            allowed_tenants,
            cache: TokenCache::default(),
            persistent: None,
            label,
        })
    }

    /// The same core keeping the application's tokens in MSAL's persistent cache, as
    /// `options` say (the Python and JavaScript libraries' `cache_persistence_options`).
    ///
    /// # Errors
    /// An invalid cache name; no home directory; a cache that cannot be encrypted in a build
    /// without the secret store while plain files are not allowed.
    pub(crate) fn with_persistence(
        mut self,
        options: Option<&crate::TokenCachePersistenceOptions>,
    ) -> azure_core::Result<Self> {
        if let Some(options) = options {
            self.persistent = Some(crate::user::persistent::PersistentCache::new(
                options, &self.os,
            )?);
        }
        Ok(self)
    }

    /// The same core over a shared (distributed) cache, when one is given: keyed by this
    /// credential's kind, authority, tenant and client.
    pub(crate) fn with_shared(
        mut self,
        shared: Option<crate::shared_cache::SharedTokenCache>,
    ) -> Self {
        if let Some(shared) = shared {
            let identity = format!(
                "{}\u{1}{}\u{1}{}\u{1}{}",
                self.label.name,
                self.client.authority(),
                self.tenant_id,
                self.client_id
            );
            let level = crate::shared_cache::SharedLevel::new(shared, identity);
            self.cache = std::mem::take(&mut self.cache).with_shared(Some(level));
        }
        self
    }

    /// The same core with another overall deadline for one `get_token` (interactive
    /// credentials wait for a person).
    pub(crate) fn with_deadline(mut self, deadline: time::Duration) -> Self {
        self.cache = self.cache.with_deadline(deadline);
        self
    }

    /// The credential's label.
    pub(crate) fn label(&self) -> Label {
        self.label
    }

    /// The tenant a request goes to: the requested one if allowed, else the configured one.
    fn tenant<'a>(&'a self, requested: Option<&'a str>) -> azure_core::Result<&'a str> {
        let Some(requested) = requested.filter(|t| *t != self.tenant_id) else {
            return Ok(&self.tenant_id);
        };
        validate_tenant_id(requested)?;
        let allowed = self
            .allowed_tenants
            .iter()
            .any(|t| t == "*" || t.eq_ignore_ascii_case(requested));
        if allowed {
            Ok(requested)
        } else {
            Err(credential_error(format!(
                "The current credential is not configured to acquire tokens for tenant {requested}. To enable acquiring tokens for this tenant add it to additionally_allowed_tenants in the credential's options, or add \"*\" to allow any tenant."
            )))
        }
    }

    /// A cached token for the request, if one may be served now: the synchronous hit path,
    /// tried before any future is built. `None` also for invalid input, which the full path
    /// then reports.
    pub(crate) fn try_cached(
        &self,
        scopes: &[&str],
        options: Option<&TokenRequestOptions<'_>>,
    ) -> Option<AccessToken> {
        if scopes.is_empty() {
            return None;
        }
        let extras = options.and_then(|o| o.method_options.context.value::<TokenRequestExtras>());
        let key = match extras {
            // The common case: nothing per-request, so nothing to resolve or compare.
            None => CacheKey {
                scopes,
                tenant: None,
                claims: None,
            },
            // A claims challenge always goes to Entra.
            Some(extras) if extras.claims.is_some() => return None,
            Some(extras) => {
                let tenant = self.tenant(extras.tenant_id.as_deref()).ok()?;
                CacheKey {
                    scopes,
                    tenant: (tenant != self.tenant_id).then_some(tenant),
                    claims: crate::cae::cache_claims(extras.enable_cae),
                }
            }
        };
        self.cache.try_hit(&key, self.os.clock.as_ref())
    }

    /// A token for `scopes`: from the cache, or fetched once per key by `fetch`.
    pub(crate) async fn get_token<'a, F, Fut>(
        &'a self,
        scopes: &'a [&'a str],
        options: &'a TokenRequestOptions<'a>,
        fetch: F,
    ) -> azure_core::Result<AccessToken>
    where
        F: FnOnce(FetchRequest<'a>) -> Fut,
        Fut: Future<Output = azure_core::Result<FetchedToken>> + 'a,
    {
        validate_scopes(scopes)?;
        let context = &options.method_options.context;
        let extras = context.value::<TokenRequestExtras>();
        let tenant = self.tenant(extras.and_then(|e| e.tenant_id.as_deref()))?;
        let challenge = extras.and_then(|e| e.claims.as_deref());
        let cae = extras.is_some_and(|e| e.enable_cae);
        let key = CacheKey {
            scopes,
            tenant: (tenant != self.tenant_id).then_some(tenant),
            claims: crate::cae::cache_claims(cae),
        };
        if challenge.is_none()
            && let Some(token) = self.cache.try_hit(&key, self.os.clock.as_ref())
        {
            tracing::trace!(credential = self.label.name, "token cache hit");
            return Ok(token);
        }
        // The persistent cache and this request's key in it (nothing to build without one).
        let persistent = self.persistent.as_ref().map(|cache| {
            (
                cache,
                AppKey::new(self.client.authority(), &self.client_id, tenant),
            )
        });
        let request = || async move {
            if let (Some((cache, app)), None) = (&persistent, challenge)
                && let Some(token) = cache.app_token(app, scopes, cae).await?
            {
                tracing::debug!(credential = self.label.name, "persistent token cache hit");
                return Ok(token);
            }
            let fetched = fetch(FetchRequest {
                tenant,
                claims: crate::cae::request_claims(challenge, cae),
                cae,
                scopes,
                context,
            })
            .await?;
            if let Some((cache, app)) = &persistent {
                cache.store_app_token(app, scopes, &fetched, cae).await;
            }
            Ok(fetched)
        };
        let clock = self.os.clock.as_ref();
        // The fetching future is large; boxing it keeps the caller's future (and so every
        // cache hit, which the trait boxes and moves) small.
        let result = if challenge.is_some() {
            tracing::debug!(
                credential = self.label.name,
                "claims challenge: fetching a new token"
            );
            Box::pin(self.cache.fetch_fresh(self.label.name, key, clock, request)).await
        } else {
            Box::pin(
                self.cache
                    .get_or_fetch(self.label.name, key, clock, request),
            )
            .await
        };
        result.map_err(|e| authentication_error(self.label.name, self.label.fragment, e))
    }
}
