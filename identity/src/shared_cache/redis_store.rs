//! [`RedisTokenStore`]: the shared token cache in Redis (feature `redis`).

use std::time::Duration;

use redis::AsyncCommands;

use super::{StoreFuture, TokenCacheStore};

fn io(e: redis::RedisError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A Redis server as the shared token cache. Connects lazily and reconnects by itself
/// (`redis`'s connection manager); every call is bounded by the shared cache.
#[derive(Clone)]
pub struct RedisTokenStore {
    client: redis::Client,
    connection: std::sync::Arc<tokio::sync::OnceCell<redis::aio::ConnectionManager>>,
}

impl std::fmt::Debug for RedisTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisTokenStore").finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// A store at `url` (`redis://host:port/db`, `rediss://…` for TLS if the `redis` crate was
    /// built with it). Nothing is sent until the first call.
    ///
    /// # Errors
    /// The URL is not a Redis URL.
    pub fn new(url: &str) -> azure_core::Result<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                format!(
                    "'{}' is not a Redis URL: {e}",
                    url.split('@').next_back().unwrap_or("")
                ),
            )
        })?;
        Ok(Self {
            client,
            connection: std::sync::Arc::default(),
        })
    }

    async fn connection(&self) -> std::io::Result<redis::aio::ConnectionManager> {
        self.connection
            .get_or_try_init(|| async {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_millis(500))
                    .set_response_timeout(Duration::from_millis(500))
                    .set_number_of_retries(1);
                redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .cloned()
            .map_err(io)
    }
}

/// Deletes the lock only if this replica still holds it.
const UNLOCK: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl TokenCacheStore for RedisTokenStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            c.get(key).await.map_err(io)
        })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            c.pset_ex(key, value, millis(ttl)).await.map_err(io)
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(owner)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query_async(&mut c)
                .await
                .map_err(io)?;
            Ok(set.is_some())
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, owner: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut c = self.connection().await?;
            let _: i64 = redis::Script::new(UNLOCK)
                .key(key)
                .arg(owner)
                .invoke_async(&mut c)
                .await
                .map_err(io)?;
            Ok(())
        })
    }
}
