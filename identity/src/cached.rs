//! The one shape of `get_token` for every credential the token cache serves (secret,
//! certificate, assertion, workload identity, Azure Pipelines, managed identity): a
//! synchronous cache hit answered with a ready future, else the fetching path, boxed.
//!
//! A credential implements [`CachedCredential`] (its hit and its fetch) and invokes
//! [`cached_token_credential!`]. Written out rather than through `#[async_trait]`: a hit then
//! costs one small allocation instead of building and moving the whole fetching state machine.

use std::future::Future;

use azure_core::credentials::{AccessToken, TokenRequestOptions};

/// A credential whose tokens the shared cache serves.
pub(crate) trait CachedCredential: Send + Sync {
    /// A cached token for the request, if one may be served now; `None` also for invalid
    /// input, which [`fetch_token`](Self::fetch_token) then reports.
    fn cached(
        &self,
        scopes: &[&str],
        options: Option<&TokenRequestOptions<'_>>,
    ) -> Option<AccessToken>;

    /// The full path: validation, the single-flight fetch and caching, error wrapping.
    fn fetch_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: &'a TokenRequestOptions<'a>,
    ) -> impl Future<Output = azure_core::Result<AccessToken>> + Send + 'a;
}

/// Implements `TokenCredential` for a [`CachedCredential`]: `cached_token_credential!(Type)`,
/// or `cached_token_credential!(impl<C: Bound> Type<C>)` for a generic one. With
/// `confidential` first, it also implements [`CachedCredential`] for a type with a
/// `core: Confidential` field and an `async fn fetch(&self, FetchRequest<'_>)`; with `wraps`,
/// for a newtype over such a credential.
macro_rules! cached_token_credential {
    (confidential impl<$($g:ident: $b:path),*> $ty:ty) => {
        impl<$($g: $b),*> $crate::cached::CachedCredential for $ty {
            fn cached(
                &self,
                scopes: &[&str],
                options: Option<&azure_core::credentials::TokenRequestOptions<'_>>,
            ) -> Option<azure_core::credentials::AccessToken> {
                self.core.try_cached(scopes, options)
            }

            fn fetch_token<'a>(
                &'a self,
                scopes: &'a [&'a str],
                options: &'a azure_core::credentials::TokenRequestOptions<'a>,
            ) -> impl std::future::Future<Output = azure_core::Result<azure_core::credentials::AccessToken>>
                   + Send
                   + 'a {
                self.core.get_token(scopes, options, |request| self.fetch(request))
            }
        }
        $crate::cached::cached_token_credential!(impl<$($g: $b),*> $ty);
    };
    (confidential $ty:ty) => {
        $crate::cached::cached_token_credential!(confidential impl<> $ty);
    };
    (wraps $ty:ty) => {
        impl $crate::cached::CachedCredential for $ty {
            fn cached(
                &self,
                scopes: &[&str],
                options: Option<&azure_core::credentials::TokenRequestOptions<'_>>,
            ) -> Option<azure_core::credentials::AccessToken> {
                self.0.cached(scopes, options)
            }

            fn fetch_token<'a>(
                &'a self,
                scopes: &'a [&'a str],
                options: &'a azure_core::credentials::TokenRequestOptions<'a>,
            ) -> impl std::future::Future<Output = azure_core::Result<azure_core::credentials::AccessToken>>
                   + Send
                   + 'a {
                self.0.fetch_token(scopes, options)
            }
        }
        $crate::cached::cached_token_credential!($ty);
    };
    (impl<$($g:ident: $b:path),*> $ty:ty) => {
        impl<$($g: $b),*> azure_core::credentials::TokenCredential for $ty {
            fn get_token<'life0, 'life1, 'life2, 'life3, 'async_trait>(
                &'life0 self,
                scopes: &'life1 [&'life2 str],
                options: Option<azure_core::credentials::TokenRequestOptions<'life3>>,
            ) -> $crate::confidential::TokenFuture<'async_trait>
            where
                'life0: 'async_trait,
                'life1: 'async_trait,
                'life2: 'async_trait,
                'life3: 'async_trait,
                Self: 'async_trait,
            {
                use $crate::cached::CachedCredential;
                if let Some(token) = self.cached(scopes, options.as_ref()) {
                    return Box::pin(std::future::ready(Ok(token)));
                }
                Box::pin(async move {
                    let options = $crate::confidential::options_or_default(&options);
                    self.fetch_token(scopes, options).await
                })
            }
        }
    };
    ($ty:ty) => {
        $crate::cached::cached_token_credential!(impl<> $ty);
    };
}
pub(crate) use cached_token_credential;
