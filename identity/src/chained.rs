//! Credential chains, designed so a configuration mistake cannot silently turn into
//! authenticating as someone else.
//!
//! A chain tries its credentials in order and moves past one **only when it is unavailable**:
//! not configured here (no variables, tool not installed or not signed in, no managed-identity
//! endpoint). A credential that is configured and fails (a wrong secret, an expired federated
//! token, a revoked CLI sign-in) **stops the chain** with that error: falling through to the next
//! source would hide the mistake and hand out a token for a different identity. The first
//! credential that succeeds is remembered and used alone from then on, so the identity does not
//! change between calls. When every source is unavailable, the error lists each attempt as
//! `name: what happened` and what to do.
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use std::sync::Arc;
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::{AzureCliCredential, ChainedTokenCredential, EnvironmentCredential};
//!
//! let chain = ChainedTokenCredential::new(
//!     vec![EnvironmentCredential::new(None)?, AzureCliCredential::new(None)?],
//!     None,
//! )?;
//! let token = chain.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};

use crate::errors::{CredentialUnavailable, is_unavailable};

/// Options for constructing a [`ChainedTokenCredential`].
#[derive(Debug, Clone, Default)]
pub struct ChainedTokenCredentialOptions {}

/// The chain mechanism shared by [`ChainedTokenCredential`], `DeveloperToolsCredential` and
/// `DefaultAzureCredential`.
#[derive(Debug)]
pub(crate) struct Chain {
    label: &'static str,
    hint: &'static str,
    sources: Vec<(String, Arc<dyn TokenCredential>)>,
    /// The index of the source that worked; `usize::MAX` before one has.
    winner: AtomicUsize,
}

impl Chain {
    pub(crate) fn new(
        label: &'static str,
        hint: &'static str,
        sources: Vec<(String, Arc<dyn TokenCredential>)>,
    ) -> Self {
        Self {
            label,
            hint,
            sources,
            winner: AtomicUsize::new(usize::MAX),
        }
    }

    pub(crate) async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if let Some((_, source)) = self.sources.get(self.winner.load(Ordering::Relaxed)) {
            return source.get_token(scopes, options).await;
        }
        let mut attempts = Vec::new();
        for (i, (name, source)) in self.sources.iter().enumerate() {
            match source.get_token(scopes, options.clone()).await {
                Ok(token) => {
                    self.winner.store(i, Ordering::Relaxed);
                    tracing::info!(credential = self.label, source = %name, "authenticated; this source is used from now on");
                    return Ok(token);
                }
                Err(e) if is_unavailable(&e) => {
                    tracing::debug!(credential = self.label, source = %name, error = %e, "unavailable; trying the next source");
                    attempts.push(format!("- {name}: {e}"));
                }
                Err(e) => {
                    tracing::warn!(credential = self.label, source = %name, "configured but failed; the chain stops here");
                    let message = format!(
                        "{}: {name} is configured but failed, so the chain stopped there instead of trying other identities: {e}",
                        self.label
                    );
                    return Err(Error::with_error(ErrorKind::Credential, e, message));
                }
            }
        }
        let message = format!(
            "{}: no credential in the chain is available here.\n{}\n{}",
            self.label,
            attempts.join("\n"),
            self.hint
        );
        Err(Error::new(
            ErrorKind::Credential,
            CredentialUnavailable::new(message),
        ))
    }
}

/// Tries credentials in order, moving on only past unavailable ones. See the module docs.
#[derive(Debug)]
pub struct ChainedTokenCredential {
    chain: Chain,
}

impl ChainedTokenCredential {
    /// A chain of `sources`, tried in order. Messages name them by position (`credential 1`,
    /// …); each source's own error follows its name. [`Self::with_names`] names them.
    ///
    /// # Errors
    /// An empty list.
    pub fn new(
        sources: Vec<Arc<dyn TokenCredential>>,
        options: Option<ChainedTokenCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let named = sources
            .into_iter()
            .enumerate()
            .map(|(i, s)| (format!("credential {}", i + 1), s))
            .collect();
        Self::with_names(named, options)
    }

    /// A chain of named sources, tried in order; the names appear in its messages and logs.
    /// (Addition beyond upstream.)
    ///
    /// # Errors
    /// An empty list.
    pub fn with_names(
        sources: Vec<(String, Arc<dyn TokenCredential>)>,
        _options: Option<ChainedTokenCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        if sources.is_empty() {
            return Err(crate::errors::credential_error(
                "a ChainedTokenCredential needs at least one credential",
            ));
        }
        Ok(Arc::new(Self {
            chain: Chain::new(
                "ChainedTokenCredential",
                "Configure one of these credentials.",
                sources,
            ),
        }))
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TokenCredential for ChainedTokenCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.chain.get_token(scopes, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Unavailable until `ready` is set; counts calls.
    #[derive(Debug)]
    struct Stub {
        ready: AtomicBool,
        calls: AtomicUsize,
        fail: bool,
    }

    impl Stub {
        fn new(ready: bool, fail: bool) -> Arc<Self> {
            Arc::new(Self {
                ready: AtomicBool::new(ready),
                calls: AtomicUsize::new(0),
                fail,
            })
        }
    }

    #[async_trait::async_trait]
    impl TokenCredential for Stub {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.fail {
                return Err(crate::errors::credential_error("wrong secret"));
            }
            if !self.ready.load(Ordering::SeqCst) {
                return Err(crate::errors::unavailable("not configured"));
            }
            Ok(AccessToken::new(
                "t",
                time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(30000),
            ))
        }
    }

    #[tokio::test]
    async fn the_winner_is_remembered_even_when_an_earlier_source_becomes_available() {
        let (a, b) = (Stub::new(false, false), Stub::new(true, false));
        let chain = ChainedTokenCredential::new(vec![a.clone(), b.clone()], None).unwrap();
        chain.get_token(&["s"], None).await.unwrap();
        a.ready.store(true, Ordering::SeqCst);
        chain.get_token(&["s"], None).await.unwrap();
        assert_eq!(
            a.calls.load(Ordering::SeqCst),
            1,
            "the first source is not retried"
        );
        assert_eq!(b.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failing_source_stops_the_chain_and_is_named_by_position_or_by_its_name() {
        let (a, b) = (Stub::new(true, true), Stub::new(true, false));
        let chain = ChainedTokenCredential::new(vec![a.clone(), b.clone()], None).unwrap();
        let err = chain.get_token(&["s"], None).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ChainedTokenCredential: credential 1 is configured but failed"),
            "{err}"
        );
        let named = vec![("primary".to_string(), a as Arc<dyn TokenCredential>)];
        let chain = ChainedTokenCredential::with_names(named, None).unwrap();
        let err = chain.get_token(&["s"], None).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ChainedTokenCredential: primary is configured but failed"),
            "{err}"
        );
        assert_eq!(b.calls.load(Ordering::SeqCst), 0);
        assert!(ChainedTokenCredential::new(vec![], None).is_err());
    }
}
