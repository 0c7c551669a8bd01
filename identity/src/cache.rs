//! The token cache every HTTP credential sits behind.
//!
//! - **Key**: the scopes (order-sensitive, as requested), plus the tenant and claims when a
//!   request carries them.
//! - **Single flight per key**: concurrent callers of a cold or expiring key wait for one fetch.
//!   Each key has its own async mutex, held only by the fetching caller, so a fetch for one key
//!   never blocks callers of another (upstream holds one global write lock across the network
//!   call, which serialises every scope).
//! - **Refresh ahead**: at Entra's `refresh_in` when it sends one, else five minutes before
//!   expiry (the same margin azure_core's bearer-token policy uses: it leaves room for retries
//!   and for clock skew between this machine and the resource). Tokens that live less than ten
//!   minutes refresh at half their remaining lifetime instead, so they are not re-fetched on
//!   every call.
//! - **Serve stale on failure**: if a refresh fails while the cached token is still valid, the
//!   cached token is returned and the next attempt waits [`RETRY_AFTER_FAILURE`] (or half the
//!   remaining lifetime, whichever is shorter). Errors are never cached.
//!
//! The hit path takes one uncontended read lock, hashes the scopes without allocating, and
//! clones the token (the only allocation, since `AccessToken` owns its secret).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use azure_core::credentials::AccessToken;
use time::{Duration, OffsetDateTime};

use crate::os::Clock;
use crate::token::FetchedToken;

/// Refresh this long before expiry when Entra gives no `refresh_in`.
pub(crate) const REFRESH_MARGIN: Duration = Duration::minutes(5);
/// After a failed refresh, keep serving the still-valid token this long before trying again.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::seconds(30);

/// A lookup key, borrowed from the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheKey<'a> {
    pub(crate) scopes: &'a [&'a str],
    pub(crate) tenant: Option<&'a str>,
    pub(crate) claims: Option<&'a str>,
}

impl<'a> CacheKey<'a> {
    /// A key of scopes only.
    #[cfg(test)]
    pub(crate) fn scopes(scopes: &'a [&'a str]) -> Self {
        Self {
            scopes,
            tenant: None,
            claims: None,
        }
    }

    /// A constant-time sample hash: each component's length and its first, middle and last
    /// eight bytes, mixed FxHash-style. Lookups compare the full key, so a collision only
    /// means two keys share a bucket; this keeps the hit path at a few nanoseconds however long
    /// the scopes are.
    fn hash(&self) -> u64 {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        fn word(bytes: &[u8], at: usize) -> u64 {
            match bytes.get(at..at + 8) {
                // A fixed-size read: no call to memcpy.
                Some(eight) => eight.try_into().map(u64::from_le_bytes).unwrap_or_default(),
                None => bytes
                    .iter()
                    .skip(at)
                    .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
            }
        }
        let mut h: u64 = 0;
        let mut eat = |bytes: &[u8]| {
            let n = bytes.len();
            for w in [
                n as u64,
                word(bytes, 0),
                word(bytes, n / 2),
                word(bytes, n.saturating_sub(8)),
            ] {
                h = (h.rotate_left(5) ^ w).wrapping_mul(K);
            }
        };
        for scope in self.scopes {
            eat(scope.as_bytes());
        }
        for (tag, part) in [(1u8, self.tenant), (2, self.claims)] {
            if let Some(part) = part {
                eat(&[tag]);
                eat(part.as_bytes());
            }
        }
        h
    }
}

#[derive(Debug)]
struct OwnedKey {
    scopes: Vec<String>,
    tenant: Option<String>,
    claims: Option<String>,
}

impl OwnedKey {
    fn from(key: &CacheKey<'_>) -> Self {
        Self {
            scopes: key.scopes.iter().map(|s| (*s).to_string()).collect(),
            tenant: key.tenant.map(str::to_string),
            claims: key.claims.map(str::to_string),
        }
    }

    fn matches(&self, key: &CacheKey<'_>) -> bool {
        self.scopes.len() == key.scopes.len()
            && self.scopes.iter().zip(key.scopes).all(|(a, b)| a == b)
            && self.tenant.as_deref() == key.tenant
            && self.claims.as_deref() == key.claims
    }
}

/// Times in the cache are Unix nanoseconds: the hit path compares integers instead of
/// building calendar dates.
type Nanos = i128;

#[derive(Debug)]
struct Cached {
    token: AccessToken,
    expires_at: Nanos,
    refresh_at: Nanos,
    /// Set after a failed refresh: serve `token` until then without trying again.
    retry_at: Option<Nanos>,
}

impl Cached {
    /// The token, if it may be served at `now` without fetching.
    fn servable(&self, now: Nanos) -> Option<&AccessToken> {
        let valid = now < self.expires_at;
        let fresh = now < self.refresh_at;
        let backing_off = self.retry_at.is_some_and(|r| now < r);
        (valid && (fresh || backing_off)).then_some(&self.token)
    }
}

#[derive(Debug)]
struct Entry {
    key: OwnedKey,
    cached: Option<Cached>,
    flight: Arc<tokio::sync::Mutex<()>>,
}

/// When to refresh a token fetched at `now`.
pub(crate) fn refresh_at(fetched: &FetchedToken, now: OffsetDateTime) -> OffsetDateTime {
    let expires_on = fetched.token.expires_on;
    if let Some(hint) = fetched.refresh_at
        && hint < expires_on
    {
        return hint;
    }
    let ahead = expires_on - REFRESH_MARGIN;
    if ahead - now >= REFRESH_MARGIN {
        ahead
    } else {
        now + (expires_on - now) / 2
    }
}

/// Keys are already hashes ([`CacheKey::hash`]); hashing them again would only cost time.
#[derive(Debug, Default, Clone, Copy)]
struct PrehashedKey;

/// The hasher of [`PrehashedKey`]: passes the `u64` key through.
#[derive(Debug, Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl std::hash::BuildHasher for PrehashedKey {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

/// How many keys (scope sets × tenants × claims) one credential's cache holds. Past it, adding
/// a key first drops keys whose tokens have expired (and that no caller is fetching), then, if
/// that is not enough, the keys whose tokens expire soonest, down to three quarters of the
/// bound. A service asking for many tenants, scopes or claims challenges keeps a bounded cache;
/// an evicted key only costs a fetch the next time it is asked for.
pub(crate) const MAX_KEYS: usize = 4096;

/// The longest a `get_token` that has to fetch may take, waiting for another caller's fetch
/// and retries included. Entra requests retry for at most about a minute by default and IMDS
/// for at most 100 s (Azure's guidance), so two minutes leaves them room while bounding the
/// worst case of per-try timeouts times retries (30 s × 9 by default). A caller that gives up
/// (this deadline, or its own cancellation) releases the key: the next caller fetches afresh.
pub(crate) const GET_TOKEN_DEADLINE: Duration = Duration::minutes(2);

/// The cache's map and how many entries it holds.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<u64, Vec<Entry>, PrehashedKey>,
    len: usize,
}

/// The cache. One per credential.
#[derive(Debug)]
pub(crate) struct TokenCache {
    entries: RwLock<Entries>,
    max_keys: usize,
    deadline: Duration,
    /// The shared level under this one, if the credential has one.
    shared: Option<crate::shared_cache::SharedLevel>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::with_max_keys(MAX_KEYS)
    }
}

impl Entries {
    /// Makes room for one more entry, as [`MAX_KEYS`] describes.
    fn make_room(&mut self, max_keys: usize, now: Nanos) {
        if self.len < max_keys {
            return;
        }
        let idle = |e: &Entry| Arc::strong_count(&e.flight) == 1;
        let expired = |e: &Entry| e.cached.as_ref().is_none_or(|c| c.expires_at <= now);
        self.retain(|e| !(idle(e) && expired(e)));
        if self.len < max_keys {
            return;
        }
        // The idle entries that expire soonest, exactly as many as needed (ties do not widen
        // the cut).
        let mut candidates: Vec<(Nanos, u64, usize)> = Vec::new();
        for (hash, bucket) in &self.map {
            for (at, e) in bucket.iter().enumerate().filter(|(_, e)| idle(e)) {
                if let Some(c) = &e.cached {
                    candidates.push((c.expires_at, *hash, at));
                }
            }
        }
        let excess = self
            .len
            .saturating_sub(max_keys * 3 / 4)
            .min(candidates.len());
        if excess == 0 {
            return;
        }
        candidates.select_nth_unstable(excess - 1);
        let mut doomed: Vec<(u64, usize)> = candidates[..excess]
            .iter()
            .map(|&(_, hash, at)| (hash, at))
            .collect();
        // Remove from the back of each bucket first so earlier positions stay valid.
        doomed.sort_unstable_by(|a, b| b.cmp(a));
        for (hash, at) in doomed {
            if let Some(bucket) = self.map.get_mut(&hash) {
                bucket.swap_remove(at);
            }
        }
        self.retain(|_| true);
    }

    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        for bucket in self.map.values_mut() {
            bucket.retain(&keep);
        }
        self.map.retain(|_, bucket| !bucket.is_empty());
        self.len = self.map.values().map(Vec::len).sum();
    }
}

impl TokenCache {
    /// A cache holding at most `max_keys` keys.
    pub(crate) fn with_max_keys(max_keys: usize) -> Self {
        Self {
            entries: RwLock::default(),
            max_keys: max_keys.max(1),
            deadline: GET_TOKEN_DEADLINE,
            shared: None,
        }
    }

    /// The same cache over a shared level (see [`crate::shared_cache`]).
    pub(crate) fn with_shared(mut self, shared: Option<crate::shared_cache::SharedLevel>) -> Self {
        self.shared = shared;
        self
    }

    /// The same cache with another overall deadline for fetches (interactive sign-ins wait
    /// for a person).
    pub(crate) fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// How many keys the cache holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len
    }

    /// A cached token that may be served now, without waiting: the hit path. Synchronous and
    /// small, so callers can try it before building the (large) fetching future.
    pub(crate) fn try_hit(&self, key: &CacheKey<'_>, clock: &dyn Clock) -> Option<AccessToken> {
        self.hit(key, key.hash(), clock.unix_timestamp_nanos())
    }

    fn hit(&self, key: &CacheKey<'_>, hash: u64, now: Nanos) -> Option<AccessToken> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .map
            .get(&hash)?
            .iter()
            .find(|e| e.key.matches(key))?
            .cached
            .as_ref()?
            .servable(now)
            .cloned()
    }

    /// The single-flight lock of a key, creating the entry (and making room) if needed.
    fn flight(&self, key: &CacheKey<'_>, hash: u64, now: Nanos) -> Arc<tokio::sync::Mutex<()>> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let existing = entries.map.get(&hash).and_then(|bucket| {
            bucket
                .iter()
                .find(|e| e.key.matches(key))
                .map(|e| e.flight.clone())
        });
        if let Some(flight) = existing {
            return flight;
        }
        entries.make_room(self.max_keys, now);
        let flight = Arc::new(tokio::sync::Mutex::new(()));
        entries.map.entry(hash).or_default().push(Entry {
            key: OwnedKey::from(key),
            cached: None,
            flight: flight.clone(),
        });
        entries.len += 1;
        flight
    }

    fn with_entry<T>(
        &self,
        key: &CacheKey<'_>,
        hash: u64,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Option<T> {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries
            .map
            .get_mut(&hash)?
            .iter_mut()
            .find(|e| e.key.matches(key))
            .map(f)
    }

    /// Returns a cached token or fetches one, as the module docs describe, within the
    /// cache's deadline ([`GET_TOKEN_DEADLINE`] by default). `name` labels tracing events and
    /// the deadline error.
    pub(crate) async fn get_or_fetch<F, Fut>(
        &self,
        name: &'static str,
        key: CacheKey<'_>,
        clock: &dyn Clock,
        fetch: F,
    ) -> azure_core::Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<FetchedToken>>,
    {
        self.obtain(name, key, clock, false, fetch).await
    }

    /// Fetches a new token whatever the cache holds (a claims challenge said the cached one is
    /// no longer accepted) and caches it under `key`, so later requests get the new token.
    pub(crate) async fn fetch_fresh<F, Fut>(
        &self,
        name: &'static str,
        key: CacheKey<'_>,
        clock: &dyn Clock,
        fetch: F,
    ) -> azure_core::Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<FetchedToken>>,
    {
        self.obtain(name, key, clock, true, fetch).await
    }

    async fn obtain<F, Fut>(
        &self,
        name: &'static str,
        key: CacheKey<'_>,
        clock: &dyn Clock,
        fresh: bool,
        fetch: F,
    ) -> azure_core::Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<FetchedToken>>,
    {
        use futures::FutureExt;
        let hash = key.hash();
        let work = self
            .get_or_fetch_unbounded(name, key, clock, fresh, fetch)
            .fuse();
        let std_deadline = std::time::Duration::try_from(self.deadline).unwrap_or_default();
        let expired = azure_core::async_runtime::get_async_runtime()
            .sleep(self.deadline)
            .fuse();
        futures::pin_mut!(work, expired);
        futures::select! {
            result = work => result,
            () = expired => self.after_deadline(name, &key, hash, clock, std_deadline),
        }
    }

    /// At the deadline: a token that is still valid (a refresh was under way) is served, as
    /// after a failed refresh; otherwise the deadline error.
    fn after_deadline(
        &self,
        name: &'static str,
        key: &CacheKey<'_>,
        hash: u64,
        clock: &dyn Clock,
        deadline: std::time::Duration,
    ) -> azure_core::Result<AccessToken> {
        let now = clock.unix_timestamp_nanos();
        let valid = self.with_entry(key, hash, |e| {
            e.cached
                .as_ref()
                .filter(|c| now < c.expires_at)
                .map(|c| c.token.clone())
        });
        if let Some(token) = valid.flatten() {
            tracing::warn!(
                credential = name,
                "token refresh timed out; serving the cached token, which is still valid"
            );
            return Ok(token);
        }
        Err(azure_core::Error::with_message(
            azure_core::error::ErrorKind::Io,
            format!(
                "{name}: no token within {} s: the token endpoint did not answer in time, retries included. Check that the authority is reachable; a later call tries again",
                deadline.as_secs_f64()
            ),
        ))
    }

    async fn get_or_fetch_unbounded<F, Fut>(
        &self,
        name: &'static str,
        key: CacheKey<'_>,
        clock: &dyn Clock,
        fresh: bool,
        fetch: F,
    ) -> azure_core::Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<FetchedToken>>,
    {
        let hash = key.hash();
        if !fresh && let Some(token) = self.hit(&key, hash, clock.unix_timestamp_nanos()) {
            tracing::trace!(credential = name, "token cache hit");
            return Ok(token);
        }
        let flight = self.flight(&key, hash, clock.unix_timestamp_nanos());
        let _guard = flight.lock().await;
        // Another caller may have refreshed while this one waited.
        if !fresh && let Some(token) = self.hit(&key, hash, clock.unix_timestamp_nanos()) {
            tracing::trace!(
                credential = name,
                "token cache hit after waiting for a fetch"
            );
            return Ok(token);
        }
        let refreshing = self
            .with_entry(&key, hash, |e| e.cached.is_some())
            .unwrap_or(false);
        tracing::debug!(
            credential = name,
            scopes = ?key.scopes,
            "{}",
            if refreshing { "token cache refresh" } else { "token cache miss" }
        );
        let fetched = match &self.shared {
            // A fresh fetch must not be answered from the shared level either.
            Some(shared) if !fresh => shared.fetch(&key, || clock.now(), fetch).await,
            _ => fetch().await,
        };
        match fetched {
            Ok(fetched) => {
                self.store(&key, hash, &fetched, clock.now());
                Ok(fetched.token)
            }
            Err(error) => match self.stale_after_failure(&key, hash, clock.now()) {
                Some(token) => {
                    tracing::warn!(
                        credential = name,
                        error = %error,
                        "token refresh failed; serving the cached token, which is still valid"
                    );
                    Ok(token)
                }
                None => Err(error),
            },
        }
    }

    /// Caches a fetched token with its refresh time.
    fn store(&self, key: &CacheKey<'_>, hash: u64, fetched: &FetchedToken, now: OffsetDateTime) {
        let cached = Cached {
            refresh_at: refresh_at(fetched, now).unix_timestamp_nanos(),
            expires_at: fetched.token.expires_on.unix_timestamp_nanos(),
            token: fetched.token.clone(),
            retry_at: None,
        };
        self.with_entry(key, hash, |e| e.cached = Some(cached));
    }

    /// After a failed refresh: the cached token if it is still valid, and when to try again.
    fn stale_after_failure(
        &self,
        key: &CacheKey<'_>,
        hash: u64,
        now: OffsetDateTime,
    ) -> Option<AccessToken> {
        self.with_entry(key, hash, |e| {
            let cached = e.cached.as_mut()?;
            let remaining = cached.token.expires_on - now;
            if remaining <= Duration::ZERO {
                return None;
            }
            let retry_at = now + RETRY_AFTER_FAILURE.min(remaining / 2);
            cached.retry_at = Some(retry_at.unix_timestamp_nanos());
            Some(cached.token.clone())
        })
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn t0() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn fetched(
        now: OffsetDateTime,
        secs: i64,
        refresh_in: Option<i64>,
        value: &str,
    ) -> FetchedToken {
        FetchedToken {
            token: AccessToken::new(value.to_string(), now + Duration::seconds(secs)),
            refresh_at: refresh_in.map(|s| now + Duration::seconds(s)),
        }
    }

    #[test]
    fn refresh_times() {
        let now = t0();
        assert_eq!(
            refresh_at(&fetched(now, 3600, None, "a"), now),
            now + Duration::seconds(3300)
        );
        assert_eq!(
            refresh_at(&fetched(now, 86400, Some(43200), "a"), now),
            now + Duration::seconds(43200)
        );
        // Short-lived: half the lifetime rather than "already due".
        assert_eq!(
            refresh_at(&fetched(now, 240, None, "a"), now),
            now + Duration::seconds(120)
        );
    }

    /// A fetch that never ends is cut at the deadline; the key is not poisoned: the next
    /// caller fetches afresh. A caller dropped mid-fetch releases the key the same way.
    #[tokio::test]
    async fn the_deadline_cuts_a_hung_fetch_and_the_next_caller_starts_afresh() {
        let clock = ManualClock::new(t0());
        let cache = TokenCache::default().with_deadline(Duration::milliseconds(50));
        let scopes = ["s/.default"];
        let key = CacheKey::scopes(&scopes);
        let error = cache
            .get_or_fetch("T", key, &clock, futures::future::pending)
            .await
            .unwrap_err();
        assert!(
            error.to_string().starts_with("T: no token within 0.05 s"),
            "{error}"
        );
        // A caller that gives up on its own (its future dropped mid-fetch).
        let abandoned = cache.get_or_fetch("T", key, &clock, futures::future::pending);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(10), abandoned)
                .await
                .is_err()
        );
        let token = cache
            .get_or_fetch("T", key, &clock, || async {
                Ok(fetched(clock.now(), 3600, None, "fresh"))
            })
            .await
            .unwrap();
        assert_eq!(token.token.secret(), "fresh");
    }

    /// A refresh that hangs past the deadline still serves the valid cached token.
    #[tokio::test]
    async fn a_hung_refresh_serves_the_still_valid_token() {
        let clock = ManualClock::new(t0());
        let cache = TokenCache::default().with_deadline(Duration::milliseconds(50));
        let scopes = ["s/.default"];
        let key = CacheKey::scopes(&scopes);
        cache
            .get_or_fetch("T", key, &clock, || async {
                Ok(fetched(clock.now(), 3600, None, "old"))
            })
            .await
            .unwrap();
        clock.advance(Duration::minutes(56)); // past refresh-ahead, before expiry
        let token = cache
            .get_or_fetch("T", key, &clock, futures::future::pending)
            .await
            .unwrap();
        assert_eq!(token.token.secret(), "old");
    }

    /// 100,000 distinct keys (a service asking for many tenants or scopes): the cache stays
    /// within its bound, and every request is still served.
    #[tokio::test]
    async fn many_distinct_keys_stay_within_the_bound() {
        let clock = ManualClock::new(t0());
        let cache = TokenCache::default();
        let mut peak = 0;
        for i in 0..100_000 {
            let scope = format!("https://resource-{i}.example/.default");
            let scopes = [scope.as_str()];
            let token = cache
                .get_or_fetch("t", CacheKey::scopes(&scopes), &clock, || async {
                    Ok(fetched(clock.now(), 3600, None, "tok"))
                })
                .await
                .unwrap();
            assert_eq!(token.token.secret(), "tok");
            peak = peak.max(cache.len());
        }
        assert!(peak <= MAX_KEYS, "peak {peak} keys");
        assert!(
            cache.len() >= MAX_KEYS * 3 / 4 - 1,
            "evicts only what it must: {}",
            cache.len()
        );
    }

    /// Expired tokens go first; fresh ones stay while expired ones can make room.
    #[tokio::test]
    async fn expired_keys_are_evicted_before_fresh_ones() {
        let clock = ManualClock::new(t0());
        let cache = TokenCache::with_max_keys(10);
        let fill = |prefix: &'static str, secs: i64, n: usize| {
            let (cache, clock) = (&cache, &clock);
            async move {
                for i in 0..n {
                    let scope = format!("{prefix}-{i}");
                    let scopes = [scope.as_str()];
                    cache
                        .get_or_fetch("t", CacheKey::scopes(&scopes), clock, || async {
                            Ok(fetched(clock.now(), secs, None, prefix))
                        })
                        .await
                        .unwrap();
                }
            }
        };
        fill("short", 60, 5).await;
        fill("long", 86400, 5).await;
        clock.advance(Duration::minutes(5));
        fill("new", 3600, 5).await;
        let calls = AtomicUsize::new(0);
        for i in 0..5 {
            let scope = format!("long-{i}");
            let scopes = [scope.as_str()];
            cache
                .get_or_fetch("t", CacheKey::scopes(&scopes), &clock, || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(fetched(clock.now(), 86400, None, "again"))
                })
                .await
                .unwrap();
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the long-lived tokens were kept"
        );
        assert_eq!(cache.len(), 10);
    }

    #[tokio::test]
    async fn hit_miss_refresh_ahead_and_serve_stale() {
        let clock = ManualClock::new(t0());
        let cache = TokenCache::default();
        let calls = AtomicUsize::new(0);
        let scopes = ["s/.default"];
        let key = CacheKey::scopes(&scopes);
        let get = |result: azure_core::Result<FetchedToken>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { result }
        };
        let a = cache
            .get_or_fetch("t", key, &clock, || get(Ok(fetched(t0(), 3600, None, "a"))))
            .await
            .unwrap();
        assert_eq!(a.token.secret(), "a");
        // Hit: no fetch.
        let again = cache
            .get_or_fetch("t", key, &clock, || get(Ok(fetched(t0(), 3600, None, "x"))))
            .await
            .unwrap();
        assert_eq!(
            (again.token.secret(), calls.load(Ordering::SeqCst)),
            ("a", 1)
        );
        // 56 minutes in: due for refresh (5 minutes ahead of expiry).
        clock.advance(Duration::minutes(56));
        let now = clock.now();
        let b = cache
            .get_or_fetch("t", key, &clock, || get(Ok(fetched(now, 3600, None, "b"))))
            .await
            .unwrap();
        assert_eq!((b.token.secret(), calls.load(Ordering::SeqCst)), ("b", 2));
        // Due again, the refresh fails, the old token is still valid: serve it.
        clock.advance(Duration::minutes(56));
        let err = || get(Err(crate::errors::credential_error("down")));
        let stale = cache.get_or_fetch("t", key, &clock, err).await.unwrap();
        assert_eq!(
            (stale.token.secret(), calls.load(Ordering::SeqCst)),
            ("b", 3)
        );
        // Within the back-off no new attempt is made.
        clock.advance(Duration::seconds(10));
        let stale = cache.get_or_fetch("t", key, &clock, err).await.unwrap();
        assert_eq!(
            (stale.token.secret(), calls.load(Ordering::SeqCst)),
            ("b", 3)
        );
        // After the back-off it retries (fails again, still serves).
        clock.advance(Duration::seconds(25));
        cache.get_or_fetch("t", key, &clock, err).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // Once expired, the error surfaces and is not cached.
        clock.advance(Duration::minutes(10));
        assert!(cache.get_or_fetch("t", key, &clock, err).await.is_err());
        let now = clock.now();
        let c = cache
            .get_or_fetch("t", key, &clock, || get(Ok(fetched(now, 3600, None, "c"))))
            .await
            .unwrap();
        assert_eq!((c.token.secret(), calls.load(Ordering::SeqCst)), ("c", 6));
    }

    #[tokio::test]
    async fn keys_include_tenant_and_claims_and_scope_order() {
        let clock = ManualClock::new(t0());
        let cache = TokenCache::default();
        let ab = ["a", "b"];
        let ba = ["b", "a"];
        let keys = [
            CacheKey::scopes(&ab),
            CacheKey::scopes(&ba),
            CacheKey {
                scopes: &ab,
                tenant: Some("t2"),
                claims: None,
            },
            CacheKey {
                scopes: &ab,
                tenant: None,
                claims: Some("{}"),
            },
        ];
        for (i, key) in keys.iter().enumerate() {
            let v = i.to_string();
            let token = cache
                .get_or_fetch("t", *key, &clock, || async {
                    Ok(fetched(t0(), 3600, None, &v))
                })
                .await
                .unwrap();
            assert_eq!(token.token.secret(), v);
        }
    }
}
