//! The shared (distributed) token cache: a second level under each credential's in-memory
//! cache, in a store every replica of a service reaches (Redis with feature `redis`, or any
//! [`TokenCacheStore`]). A cold start of many replicas then makes one token request per
//! identity and scope instead of one per replica.
//!
//! - **Keys**: a SHA-256 of the credential's identity (kind, authority, tenant, client) and the
//!   in-memory key (scopes, requested tenant, claims); nothing readable about the identity is
//!   stored in the key.
//! - **Values**: the token, its expiry and its refresh time (as the in-memory cache computes it
//!   for the replica that fetched it), with a TTL that ends then, so a replica never reads a
//!   token it would refresh. With
//!   [`SharedTokenCache::encryption_key`] they are sealed with AES-256-GCM (key id, nonce and tag
//!   included); otherwise they are plain JSON — the store then holds bearer tokens and must be
//!   protected like them.
//! - **Single flight across replicas**: on a miss, one replica takes a short lock
//!   ([`LOCK_TTL`]) and fetches; the others poll the store for the entry, and fetch themselves
//!   once the lock has expired (a dead holder costs at most one lock lifetime).
//! - **A store that is down or slow** never fails a request Entra would have served: every store
//!   call has a bound ([`STORE_TIMEOUT`]); on an error or timeout the replica fetches directly and
//!   logs it once.
//!
//! The in-memory level stays first: a hit there never touches the store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use azure_core::credentials::{AccessToken, SecretBytes};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cache::CacheKey;
use crate::token::FetchedToken;

#[cfg(feature = "redis")]
mod redis_store;
#[cfg(feature = "redis")]
pub use redis_store::RedisTokenStore;

/// How long a replica's fetch lock lives: longer than a token request takes, short enough that a
/// replica that died holding it delays the others little.
pub const LOCK_TTL: Duration = Duration::from_secs(10);
/// The bound on each store call.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a waiting replica looks for the entry another one is fetching.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The future a [`TokenCacheStore`] call returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = std::io::Result<T>> + Send + 'a>>;

/// A key-value store every replica reaches: Redis (`RedisTokenStore`, feature `redis`), or
/// your own (SQL, Memcached, a test double).
pub trait TokenCacheStore: Send + Sync + std::fmt::Debug {
    /// The value under `key`, if any.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Stores `value` under `key` for `ttl`.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()>;
    /// Sets `key` to `owner` for `ttl` only if it is absent; `true` when this call set it.
    fn try_lock<'a>(&'a self, key: &'a str, owner: &'a str, ttl: Duration)
    -> StoreFuture<'a, bool>;
    /// Deletes `key` if it still holds `owner`.
    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()>;
}

/// A credential's shared cache: the store, and optionally the key that seals its values.
#[derive(Clone)]
pub struct SharedTokenCache {
    /// The store.
    pub store: Arc<dyn TokenCacheStore>,
    /// A 32-byte AES-256-GCM key; values are then unreadable to anyone with store access only.
    pub encryption_key: Option<SecretBytes>,
}

impl std::fmt::Debug for SharedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokenCache")
            .field("store", &self.store)
            .field("encrypted", &self.encryption_key.is_some())
            .finish()
    }
}

impl SharedTokenCache {
    /// A shared cache in `store`, unencrypted.
    pub fn new(store: Arc<dyn TokenCacheStore>) -> Self {
        Self {
            store,
            encryption_key: None,
        }
    }
}

/// What is stored.
#[derive(Serialize, Deserialize)]
struct Stored {
    token: String,
    expires_on: i64,
    #[serde(default)]
    refresh_at: Option<i64>,
}

/// A credential's shared level: the cache and the credential's identity.
#[derive(Debug)]
pub(crate) struct SharedLevel {
    cache: SharedTokenCache,
    identity: String,
    warned: AtomicBool,
}

fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

async fn bounded<T>(future: StoreFuture<'_, T>) -> std::io::Result<T> {
    use futures::FutureExt;
    let timeout = azure_core::async_runtime::get_async_runtime()
        .sleep(time::Duration::try_from(STORE_TIMEOUT).unwrap_or(time::Duration::SECOND))
        .fuse();
    let work = future.fuse();
    futures::pin_mut!(work, timeout);
    futures::select! {
        result = work => result,
        () = timeout => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the shared token cache did not answer in time")),
    }
}

impl SharedLevel {
    /// The shared level of a credential identified by `identity` (kind, authority, tenant,
    /// client: whatever makes its tokens its own).
    pub(crate) fn new(cache: SharedTokenCache, identity: String) -> Self {
        Self {
            cache,
            identity,
            warned: AtomicBool::new(false),
        }
    }

    fn key(&self, key: &CacheKey<'_>) -> String {
        let text = format!(
            "{}\u{1}{}\u{1}{}\u{1}{}",
            self.identity,
            key.tenant.unwrap_or_default(),
            key.claims.unwrap_or_default(),
            key.scopes.join(" ")
        );
        format!("azure_identity:token:{}", sha256_hex(&text))
    }

    fn degraded(&self, error: &std::io::Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(error = %error, "the shared token cache is unavailable; fetching tokens directly (logged once)");
        }
    }

    fn seal(&self, plain: Vec<u8>) -> Vec<u8> {
        let Some(key) = &self.cache.encryption_key else {
            return plain;
        };
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        let Ok(unbound) = UnboundKey::new(&AES_256_GCM, key.bytes()) else {
            return Vec::new();
        };
        let sealing = LessSafeKey::new(unbound);
        let mut nonce = [0u8; 12];
        if aws_lc_rs::rand::fill(&mut nonce).is_err() {
            return Vec::new();
        }
        let mut data = plain;
        if sealing
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
            .is_err()
        {
            return Vec::new();
        }
        let mut out = nonce.to_vec();
        out.extend(data);
        out
    }

    fn open(&self, sealed: Vec<u8>) -> Option<Vec<u8>> {
        let Some(key) = &self.cache.encryption_key else {
            return Some(sealed);
        };
        use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
        if sealed.len() < 12 {
            return None;
        }
        let opening = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.bytes()).ok()?);
        let (nonce, rest) = sealed.split_at(12);
        let mut data = rest.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = opening.open_in_place(nonce, Aad::empty(), &mut data).ok()?;
        Some(plain.to_vec())
    }

    fn decode(&self, bytes: Vec<u8>, now: OffsetDateTime) -> Option<FetchedToken> {
        let stored: Stored = serde_json::from_slice(&self.open(bytes)?).ok()?;
        let expires_on = OffsetDateTime::from_unix_timestamp(stored.expires_on).ok()?;
        let refresh_at = stored
            .refresh_at
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        let fetched = FetchedToken {
            token: AccessToken::new(stored.token, expires_on),
            refresh_at,
        };
        (crate::cache::refresh_at(&fetched, now) > now).then_some(fetched)
    }

    /// The token with the refresh time the in-memory cache gives it at `refresh_at`, so every
    /// replica refreshes when the one that fetched it would.
    fn encode(&self, token: &FetchedToken, refresh_at: OffsetDateTime) -> Vec<u8> {
        let stored = Stored {
            token: token.token.token.secret().to_string(),
            expires_on: token.token.expires_on.unix_timestamp(),
            refresh_at: Some(refresh_at.unix_timestamp()),
        };
        self.seal(serde_json::to_vec(&stored).unwrap_or_default())
    }

    /// A usable token under `key` in the store (bounded); `None` when absent, unreadable or
    /// due for refresh.
    async fn read(&self, key: &str, now: OffsetDateTime) -> std::io::Result<Option<FetchedToken>> {
        let bytes = bounded(self.cache.store.get(key)).await?;
        let token = bytes.and_then(|b| self.decode(b, now));
        if token.is_some() {
            tracing::trace!("shared token cache hit");
        }
        Ok(token)
    }

    /// A token for `key`: from the store, or fetched by one replica and shared.
    pub(crate) async fn fetch<F, Fut>(
        &self,
        key: &CacheKey<'_>,
        now: impl Fn() -> OffsetDateTime,
        fetch: F,
    ) -> azure_core::Result<FetchedToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<FetchedToken>>,
    {
        let store = &self.cache.store;
        let key = self.key(key);
        match self.read(&key, now()).await {
            Ok(Some(token)) => return Ok(token),
            Ok(None) => {}
            Err(e) => {
                self.degraded(&e);
                return fetch().await;
            }
        }
        let lock = format!("{key}:lock");
        let owner = uuid::Uuid::new_v4().to_string();
        match bounded(store.try_lock(&lock, &owner, LOCK_TTL)).await {
            Ok(true) => self.fetch_and_share(&key, &lock, &owner, now, fetch).await,
            Ok(false) => self.wait_for_holder(&key, &lock, &owner, now, fetch).await,
            Err(e) => {
                self.degraded(&e);
                fetch().await
            }
        }
    }

    /// Another replica is fetching: poll for its entry; when its lock is gone without an entry
    /// (the holder died or failed), take the lock and fetch; after a lock lifetime, fetch anyway.
    async fn wait_for_holder<F, Fut>(
        &self,
        key: &str,
        lock: &str,
        owner: &str,
        now: impl Fn() -> OffsetDateTime,
        fetch: F,
    ) -> azure_core::Result<FetchedToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<FetchedToken>>,
    {
        let runtime = azure_core::async_runtime::get_async_runtime();
        let rounds = LOCK_TTL.as_millis() / POLL_INTERVAL.as_millis();
        for _ in 0..rounds {
            runtime
                .sleep(
                    time::Duration::try_from(POLL_INTERVAL).unwrap_or(time::Duration::MILLISECOND),
                )
                .await;
            match self.read(key, now()).await {
                Ok(Some(token)) => return Ok(token),
                Ok(None) => {}
                Err(e) => {
                    self.degraded(&e);
                    return fetch().await;
                }
            }
            if let Ok(true) = bounded(self.cache.store.try_lock(lock, owner, LOCK_TTL)).await {
                return self.fetch_and_share(key, lock, owner, now, fetch).await;
            }
        }
        fetch().await
    }

    /// This replica holds the lock: fetch, share the token, release the lock.
    async fn fetch_and_share<F, Fut>(
        &self,
        key: &str,
        lock: &str,
        owner: &str,
        now: impl Fn() -> OffsetDateTime,
        fetch: F,
    ) -> azure_core::Result<FetchedToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<FetchedToken>>,
    {
        let store = &self.cache.store;
        let result = fetch().await;
        if let Ok(token) = &result {
            let now = now();
            let refresh_at = crate::cache::refresh_at(token, now);
            let ttl = (refresh_at - now).max(time::Duration::SECOND);
            let ttl = Duration::try_from(ttl).unwrap_or(Duration::from_secs(1));
            let value = self.encode(token, refresh_at);
            if let Err(e) = bounded(store.set(key, &value, ttl)).await {
                self.degraded(&e);
            }
        }
        let _ = bounded(store.unlock(lock, owner)).await;
        result
    }
}
