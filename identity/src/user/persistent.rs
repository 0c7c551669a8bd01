//! The persistent token cache for people: a signed-in user stays signed in across runs, and
//! across languages. The cache is MSAL's token-cache JSON (`AccessToken`, `RefreshToken`,
//! `IdToken`, `Account`, `AppMetadata`, with MSAL's key shapes), stored where the Python and
//! JavaScript Azure Identity libraries store it on Linux and macOS for a given name, so a
//! sign-in made by Python `azure-identity` is used silently here, and the other way round.
//! Requests for CAE tokens use the cache `{name}.cae`, the others `{name}.nocae`, as upstream.
//!
//! With the `secret_service` feature the cache is encrypted by the operating system's secret
//! store (on Linux the Secret Service over D-Bus, as msal-extensions' `LibsecretPersistence`
//! keeps it; `~/.IdentityService/{name}.nocae` is then an empty file whose time tells other
//! programs that the cache changed). Where no secret store answers — and always without the
//! feature — the cache is the plain file `~/.IdentityService/{name}.nocae`, readable by its
//! owner only, and only when [`TokenCachePersistenceOptions::allow_unencrypted_storage`] says
//! so.
//!
//! Writes take msal-extensions' lock file (`{path}.lockfile`, created exclusively; waited for
//! up to 5 seconds, then written without it, as msal-extensions does) and replace the cache
//! atomically, merging with what other programs wrote: entries of other accounts, clients and
//! scopes are kept. An unreadable or corrupt cache is a warning and an empty cache.

use std::path::PathBuf;
#[cfg(feature = "secret_service")]
use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret};
use serde_json::{Map, Value, json};
use time::Duration;

use super::{AuthenticationRecord, UserGrant};
use crate::errors::credential_error;
use crate::os::Os;
use crate::token::FetchedToken;

/// Where and how a user credential persists its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCachePersistenceOptions {
    /// The cache's name: tokens go to the secret store's item `{name}.nocae` (`{name}.cae` for
    /// CAE tokens) or the file `~/.IdentityService/{name}.nocae`. Default `msal.cache`, the
    /// cache the Microsoft developer tools share; give your application its own to keep its
    /// data apart.
    pub name: String,
    /// Store the cache as a plain file (readable by its owner only) when it cannot be
    /// encrypted: the crate was built without the `secret_service` feature, or no Secret
    /// Service answers on the session bus. The file holds refresh tokens, so protecting it is
    /// then the application's responsibility. Without this, a cache that cannot be encrypted
    /// is an error.
    pub allow_unencrypted_storage: bool,
}

impl Default for TokenCachePersistenceOptions {
    fn default() -> Self {
        Self {
            name: "msal.cache".to_string(),
            allow_unencrypted_storage: false,
        }
    }
}

/// The suffixes of the non-CAE and CAE caches.
const NON_CAE_SUFFIX: &str = ".nocae";
const CAE_SUFFIX: &str = ".cae";
/// How long a write waits for another process's lock.
const LOCK_WAIT: Duration = Duration::seconds(5);
const LOCK_RETRY: Duration = Duration::milliseconds(250);

/// Where the cache's bytes live.
#[derive(Debug, Clone)]
enum Store {
    /// The plain file.
    File,
    /// The Secret Service.
    #[cfg(feature = "secret_service")]
    Keyring(Arc<super::keyring::Keyring>),
}

/// The secret store, once it was tried: connected, or not there (and why).
#[cfg(feature = "secret_service")]
type KeyringState = Option<Result<Arc<super::keyring::Keyring>, String>>;

/// A persistent cache: its two files (CAE and not) and the store holding them.
#[derive(Debug, Clone)]
pub(crate) struct PersistentCache {
    dir: PathBuf,
    name: String,
    #[cfg_attr(not(feature = "secret_service"), allow(dead_code))]
    allow_unencrypted: bool,
    os: Os,
    #[cfg(feature = "secret_service")]
    keyring: Arc<tokio::sync::Mutex<KeyringState>>,
}

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// MSAL's `environment`: the authority's host without its port (`127.0.0.1:8443` →
/// `127.0.0.1`, `[::1]:8443` → `[::1]`), lower-cased.
fn environment(authority: &str) -> String {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(':') => {
            host
        }
        _ => authority,
    };
    host.to_ascii_lowercase()
}

/// The cache as sections; empty, with a warning, when it is not MSAL's JSON.
fn parse(bytes: &[u8], whence: &str) -> Map<String, Value> {
    if bytes.is_empty() {
        return Map::new();
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => map,
        _ => {
            tracing::warn!(
                cache = whence,
                "the token cache is not MSAL's JSON; using an empty one"
            );
            Map::new()
        }
    }
}

impl PersistentCache {
    /// The cache `options` name, in the user's home directory.
    pub(crate) fn new(options: &TokenCachePersistenceOptions, os: &Os) -> azure_core::Result<Self> {
        if !cfg!(feature = "secret_service") && !options.allow_unencrypted_storage {
            return Err(credential_error(
                "Cache encryption is impossible: this build cannot use the operating system's \
                 secret store (enable the azure_identity crate's secret_service feature). Set \
                 allow_unencrypted_storage in TokenCachePersistenceOptions to store the cache \
                 unencrypted (a file only its owner can read) instead",
            ));
        }
        let valid = !options.name.is_empty()
            && !options.name.contains(['/', '\\'])
            && options.name != ".."
            && options.name != ".";
        if !valid {
            return Err(credential_error(format!(
                "the token cache name '{}' is not a file name",
                options.name
            )));
        }
        let home = os
            .var("HOME")
            .or_else(|| os.var("USERPROFILE"))
            .ok_or_else(|| {
                credential_error("the persistent token cache needs HOME to find ~/.IdentityService")
            })?;
        Ok(Self {
            dir: PathBuf::from(home).join(".IdentityService"),
            name: options.name.clone(),
            allow_unencrypted: options.allow_unencrypted_storage,
            os: os.clone(),
            #[cfg(feature = "secret_service")]
            keyring: Arc::default(),
        })
    }

    /// The cache's name in the store: `{name}.nocae` or `{name}.cae`.
    fn schema(&self, cae: bool) -> String {
        let suffix = if cae { CAE_SUFFIX } else { NON_CAE_SUFFIX };
        format!("{}{suffix}", self.name)
    }

    /// The plain file (or, with the secret store, the file whose time signals a change).
    fn path(&self, cae: bool) -> PathBuf {
        self.dir.join(self.schema(cae))
    }

    /// The store to use: the secret store when one answers, else the file if allowed.
    ///
    /// # Errors
    /// The cache cannot be encrypted and `allow_unencrypted_storage` is not set.
    async fn store_in_use(&self) -> azure_core::Result<Store> {
        #[cfg(feature = "secret_service")]
        {
            let mut state = self.keyring.lock().await;
            if state.is_none() {
                let connected = super::keyring::Keyring::connect(&self.os).await;
                if let Err(why) = &connected
                    && self.allow_unencrypted
                {
                    tracing::warn!(reason = %why, "the Secret Service is unusable; the token cache is a plain file");
                }
                *state = Some(connected.map(Arc::new));
            }
            match state.as_ref() {
                Some(Ok(keyring)) => return Ok(Store::Keyring(keyring.clone())),
                Some(Err(why)) if !self.allow_unencrypted => {
                    return Err(credential_error(format!(
                        "Cache encryption is impossible because the Secret Service is unusable \
                         ({why}). Start one on the session bus (gnome-keyring, KWallet, \
                         KeePassXC) or set allow_unencrypted_storage in \
                         TokenCachePersistenceOptions to store the cache unencrypted"
                    )));
                }
                _ => {}
            }
        }
        Ok(Store::File)
    }

    /// Checks that the cache can be kept as its options say, before anyone signs in.
    ///
    /// # Errors
    /// The cache cannot be encrypted and `allow_unencrypted_storage` is not set.
    pub(crate) async fn check_usable(&self) -> azure_core::Result<()> {
        self.store_in_use().await.map(|_| ())
    }

    /// Forgets a connection that failed, so the next use connects again.
    #[cfg(feature = "secret_service")]
    async fn reconnect_later(&self) {
        *self.keyring.lock().await = None;
    }

    /// The cache's sections; empty, with a warning, when it is missing, unreadable or corrupt.
    async fn load(&self, store: &Store, cae: bool) -> Map<String, Value> {
        let path = self.path(cae);
        match store {
            Store::File => match self.os.fs.read(&path) {
                Ok(bytes) => parse(&bytes, &path.display().to_string()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "the token cache is unreadable; using an empty one");
                    Map::new()
                }
            },
            #[cfg(feature = "secret_service")]
            Store::Keyring(keyring) => {
                let schema = self.schema(cae);
                match keyring.load(&schema).await {
                    Ok(bytes) => parse(&bytes.unwrap_or_default(), &schema),
                    Err(e) => {
                        tracing::warn!(cache = %schema, error = %e, "the token cache is unreadable; using an empty one");
                        self.reconnect_later().await;
                        Map::new()
                    }
                }
            }
        }
    }

    /// Replaces the cache with `cache`; a failure is a warning (the token is served anyway).
    async fn save(&self, store: &Store, cae: bool, cache: &[u8]) {
        let path = self.path(cae);
        let written = match store {
            Store::File => self
                .os
                .fs
                .write_atomic(&path, cache)
                .map_err(|e| e.to_string()),
            #[cfg(feature = "secret_service")]
            Store::Keyring(keyring) => {
                // As msal-extensions: the file's time tells other programs to reload.
                if let Err(e) = self.os.fs.write_atomic(&path, b"") {
                    tracing::warn!(path = %path.display(), error = %e, "cannot touch the token cache's signal file");
                }
                let saved = keyring.save(&self.schema(cae), cache).await;
                if saved.is_err() {
                    self.reconnect_later().await;
                }
                saved
            }
        };
        if let Err(e) = written {
            tracing::warn!(cache = %self.schema(cae), error = %e, "cannot write the token cache");
        }
    }

    /// The newest refresh token of `record`'s account, client and authority.
    ///
    /// # Errors
    /// The cache cannot be encrypted and `allow_unencrypted_storage` is not set.
    pub(crate) async fn refresh_token(
        &self,
        record: &AuthenticationRecord,
        cae: bool,
    ) -> azure_core::Result<Option<Secret>> {
        let store = self.store_in_use().await?;
        let cache = self.load(&store, cae).await;
        let Some(tokens) = cache.get("RefreshToken").and_then(Value::as_object) else {
            return Ok(None);
        };
        Ok(tokens
            .values()
            .filter(|t| {
                text(t, "home_account_id") == record.home_account_id.to_ascii_lowercase()
                    && environment(&text(t, "environment")) == environment(&record.authority)
                    && text(t, "client_id") == record.client_id.to_ascii_lowercase()
            })
            .max_by_key(|t| {
                t.get("last_modification_time")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0)
            })
            .and_then(|t| t.get("secret")?.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| Secret::new(s.to_string())))
    }

    /// Adds a grant's tokens and account, keeping every other entry. `realm` is the tenant the
    /// request named (MSAL keys access tokens and accounts on it).
    pub(crate) async fn store(
        &self,
        record: &AuthenticationRecord,
        grant: &UserGrant,
        realm: &str,
        cae: bool,
    ) {
        let now = self.os.now().unix_timestamp();
        self.merge(cae, entries(record, grant, realm, now)).await;
    }

    /// An application's access token for `scopes` (client credentials: no account), as any
    /// MSAL client keeps it, if it has more than the refresh margin to live.
    ///
    /// # Errors
    /// The cache cannot be encrypted and `allow_unencrypted_storage` is not set.
    pub(crate) async fn app_token(
        &self,
        app: &AppKey<'_>,
        scopes: &[&str],
        cae: bool,
    ) -> azure_core::Result<Option<FetchedToken>> {
        let store = self.store_in_use().await?;
        let cache = self.load(&store, cae).await;
        let now = self.os.now().unix_timestamp();
        let number = |t: &Value, key: &str| text(t, key).parse::<i64>().ok();
        let Some(tokens) = cache.get("AccessToken").and_then(Value::as_object) else {
            return Ok(None);
        };
        let best = tokens
            .values()
            .filter(|t| {
                let target: Vec<String> =
                    text(t, "target").split(' ').map(str::to_string).collect();
                text(t, "home_account_id").is_empty()
                    && environment(&text(t, "environment")) == app.environment
                    && text(t, "client_id") == app.client.to_ascii_lowercase()
                    && text(t, "realm") == app.realm.to_ascii_lowercase()
                    && scopes
                        .iter()
                        .all(|s| target.contains(&s.to_ascii_lowercase()))
                    && number(t, "refresh_on").is_none_or(|r| now < r)
            })
            .filter_map(|t| Some((number(t, "expires_on")?, t.get("secret")?.as_str()?)))
            .filter(|(expires, secret)| {
                *expires - now > crate::cache::REFRESH_MARGIN.whole_seconds() && !secret.is_empty()
            })
            .max_by_key(|(expires, _)| *expires);
        Ok(best.and_then(|(expires, secret)| {
            Some(FetchedToken {
                token: AccessToken::new(
                    secret.to_string(),
                    time::OffsetDateTime::from_unix_timestamp(expires).ok()?,
                ),
                refresh_at: None,
            })
        }))
    }

    /// Adds an application's access token for `scopes`, keeping every other entry.
    pub(crate) async fn store_app_token(
        &self,
        app: &AppKey<'_>,
        scopes: &[&str],
        fetched: &FetchedToken,
        cae: bool,
    ) {
        let mut sorted: Vec<&str> = scopes.to_vec();
        sorted.sort_unstable();
        let target = sorted.join(" ");
        let names = Names {
            home: "",
            env: app.environment.clone(),
            client: app.client,
            realm: app.realm,
            target: &target,
        };
        let now = self.os.now().unix_timestamp();
        let (section, key, mut entry) = names.access_token(&fetched.token, now);
        // MSAL writes no account for an application: `null`, keyed as "".
        entry["home_account_id"] = Value::Null;
        self.merge(cae, vec![(section, key, entry), names.app_metadata()])
            .await;
    }

    /// Writes `entries` into the cache under msal-extensions' lock, keeping every other entry.
    async fn merge(&self, cae: bool, entries: Vec<Entry>) {
        let store = match self.store_in_use().await {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(error = %e, "the token cache is not written");
                return;
            }
        };
        let lock_path = PathBuf::from(format!("{}.lockfile", self.path(cae).display()));
        let mut waited = Duration::ZERO;
        let _lock = loop {
            match self.os.fs.try_lock(&lock_path) {
                Ok(Some(lock)) => break Some(lock),
                Ok(None) if waited < LOCK_WAIT => {
                    self.os.sleep.sleep(LOCK_RETRY).await;
                    waited += LOCK_RETRY;
                }
                Ok(None) => {
                    tracing::warn!(path = %lock_path.display(), "another process holds the token cache lock; writing without it");
                    break None;
                }
                Err(e) => {
                    tracing::warn!(path = %lock_path.display(), error = %e, "cannot take the token cache lock; writing without it");
                    break None;
                }
            }
        };
        let mut cache = self.load(&store, cae).await;
        for (section, key, entry) in entries {
            let map = cache
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = map {
                map.insert(key, entry);
            }
        }
        let text = serde_json::to_vec_pretty(&Value::Object(cache)).unwrap_or_default();
        self.save(&store, cae, &text).await;
    }
}

/// Which application's tokens: MSAL's environment (the authority's host), client and realm
/// (the tenant).
#[derive(Debug)]
pub(crate) struct AppKey<'a> {
    pub(crate) environment: String,
    pub(crate) client: &'a str,
    pub(crate) realm: &'a str,
}

impl<'a> AppKey<'a> {
    /// The key of `client`'s tokens in `realm` at the authority `authority`.
    pub(crate) fn new(authority: &url::Url, client: &'a str, realm: &'a str) -> Self {
        Self {
            environment: authority
                .host_str()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            client,
            realm,
        }
    }
}

/// What every MSAL entry of one grant shares, and MSAL's key shapes.
struct Names<'a> {
    home: &'a str,
    env: String,
    client: &'a str,
    realm: &'a str,
    target: &'a str,
}

type Entry = (String, String, Value);

impl Names<'_> {
    fn key(parts: &[&str]) -> String {
        parts.join("-").to_ascii_lowercase()
    }

    /// A credential entry: its type, secret and the shared fields, plus `extra`.
    fn credential(&self, kind: &str, secret: &str, extra: Value) -> Value {
        let mut entry = json!({
            "credential_type": kind,
            "secret": secret,
            "home_account_id": self.home,
            "environment": self.env,
            "client_id": self.client,
        });
        if let (Value::Object(entry), Value::Object(extra)) = (&mut entry, extra) {
            entry.extend(extra);
        }
        entry
    }

    fn access_token(&self, token: &AccessToken, now: i64) -> Entry {
        let (env, expires) = (&self.env, token.expires_on.unix_timestamp());
        let extra = json!({
            "target": self.target, "realm": self.realm, "token_type": "Bearer",
            "cached_at": now.to_string(), "expires_on": expires.to_string(),
            "extended_expires_on": expires.to_string(),
        });
        let key = Self::key(&[
            self.home,
            env,
            "AccessToken",
            self.client,
            self.realm,
            self.target,
        ]);
        let secret = token.token.secret();
        (
            "AccessToken".into(),
            key,
            self.credential("AccessToken", secret, extra),
        )
    }

    fn refresh_token(&self, secret: &str, now: i64) -> Entry {
        let extra = json!({ "target": self.target, "last_modification_time": now.to_string() });
        let key = Self::key(&[
            self.home,
            &self.env,
            "RefreshToken",
            self.client,
            "",
            self.target,
        ]);
        (
            "RefreshToken".into(),
            key,
            self.credential("RefreshToken", secret, extra),
        )
    }

    fn id_token(&self, secret: &str) -> Entry {
        let key = Self::key(&[self.home, &self.env, "IdToken", self.client, self.realm, ""]);
        let extra = json!({ "realm": self.realm });
        (
            "IdToken".into(),
            key,
            self.credential("IdToken", secret, extra),
        )
    }

    fn account(&self, record: &AuthenticationRecord, grant: &UserGrant) -> Entry {
        let entry = json!({
            "home_account_id": self.home, "environment": self.env, "realm": self.realm,
            "local_account_id": grant.local_account_id.clone().unwrap_or_default(),
            "username": record.username, "authority_type": "MSSTS",
        });
        (
            "Account".into(),
            Self::key(&[self.home, &self.env, self.realm]),
            entry,
        )
    }

    fn app_metadata(&self) -> Entry {
        let key = format!("appmetadata-{}-{}", self.env, self.client);
        let entry = json!({ "client_id": self.client, "environment": self.env });
        ("AppMetadata".into(), key, entry)
    }
}

/// The MSAL entries of a grant: (section, key, entry), keys as MSAL makes them.
fn entries(record: &AuthenticationRecord, grant: &UserGrant, realm: &str, now: i64) -> Vec<Entry> {
    let names = Names {
        home: &record.home_account_id,
        env: environment(&record.authority),
        client: &record.client_id,
        realm,
        target: &grant.target,
    };
    let mut out = vec![
        names.access_token(&grant.token.token, now),
        names.account(record, grant),
        names.app_metadata(),
    ];
    if let Some(rt) = &grant.refresh_token {
        out.push(names.refresh_token(rt.secret(), now));
    }
    if let Some(id_token) = &grant.id_token {
        out.push(names.id_token(id_token.secret()));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use azure_core::credentials::{AccessToken, Secret};

    use super::*;
    use crate::os::{Clock, FileLock, FileSystem, ManualClock, MapEnv};
    use crate::token::FetchedToken;

    /// Files in memory; the lock is always someone else's when `locked`.
    #[derive(Debug, Default)]
    struct MemoryFs {
        files: Mutex<HashMap<PathBuf, Vec<u8>>>,
        locked: bool,
    }

    impl FileSystem for MemoryFs {
        fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            self.files
                .lock()
                .unwrap()
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }

        fn write_atomic(&self, path: &Path, contents: &[u8]) -> std::io::Result<()> {
            self.files
                .lock()
                .unwrap()
                .insert(path.to_path_buf(), contents.to_vec());
            Ok(())
        }

        fn try_lock(&self, _: &Path) -> std::io::Result<Option<FileLock>> {
            if self.locked {
                Ok(None)
            } else {
                FileSystem::try_lock(&NoLocks, Path::new("x"))
            }
        }
    }

    /// A file system with the trait's default lock.
    #[derive(Debug)]
    struct NoLocks;

    impl FileSystem for NoLocks {
        fn read(&self, _: &Path) -> std::io::Result<Vec<u8>> {
            Err(std::io::ErrorKind::NotFound.into())
        }
    }

    fn os(fs: Arc<MemoryFs>, clock: Arc<ManualClock>) -> Os {
        Os {
            env: Arc::new(MapEnv::from([("HOME", "/home/u")])),
            fs,
            ..Os::with_manual_clock(clock)
        }
    }

    fn record(authority: &str) -> AuthenticationRecord {
        AuthenticationRecord {
            authority: authority.into(),
            client_id: "C".into(),
            home_account_id: "uid.utid".into(),
            tenant_id: "utid".into(),
            username: "u@x".into(),
            version: "1.0".into(),
        }
    }

    fn grant(rt: &str, now: time::OffsetDateTime) -> UserGrant {
        UserGrant {
            token: FetchedToken {
                token: AccessToken::new("at", now + Duration::hours(1)),
                refresh_at: None,
            },
            refresh_token: Some(Secret::new(rt.to_string())),
            record: None,
            nonce: None,
            id_token: None,
            local_account_id: Some("uid".into()),
            target: "a b".into(),
        }
    }

    /// A manual clock well past the epoch (tokens expire after it, not before).
    fn day_9000() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(
            time::OffsetDateTime::UNIX_EPOCH + Duration::days(9000),
        ))
    }

    fn cache(fs: Arc<MemoryFs>, clock: Arc<ManualClock>) -> PersistentCache {
        let options = TokenCachePersistenceOptions {
            name: "t".into(),
            allow_unencrypted_storage: true,
        };
        PersistentCache::new(&options, &os(fs, clock)).unwrap()
    }

    /// The refresh token `c` finds for `record`, as text.
    async fn rt(c: &PersistentCache, record: &AuthenticationRecord, cae: bool) -> Option<String> {
        let found = c.refresh_token(record, cae).await.unwrap();
        found.map(|s| s.secret().to_string())
    }

    #[tokio::test]
    async fn app_tokens_are_found_by_client_tenant_and_scopes_until_five_minutes_before_expiry() {
        let clock = day_9000();
        let fs = Arc::new(MemoryFs::default());
        let c = cache(fs.clone(), clock.clone());
        let authority = url::Url::parse("https://Login.Example:8443/").unwrap();
        let app = AppKey::new(&authority, "C", "T");
        let fetched = FetchedToken {
            token: AccessToken::new("app-token", clock.now() + Duration::hours(1)),
            refresh_at: None,
        };
        c.store_app_token(&app, &["b", "a"], &fetched, false).await;
        let found = |app: AppKey<'static>, scopes: &'static [&'static str]| {
            let c = c.clone();
            async move {
                let token = c.app_token(&app, scopes, false).await.unwrap();
                token.map(|t| t.token.token.secret().to_string())
            }
        };
        let key = |client, realm| AppKey::new(&authority, client, realm);
        assert_eq!(
            found(key("c", "t"), &["a"]).await.as_deref(),
            Some("app-token")
        );
        assert_eq!(
            found(key("C", "T"), &["a", "b"]).await.as_deref(),
            Some("app-token")
        );
        assert_eq!(found(key("C", "T"), &["x"]).await, None);
        assert_eq!(found(key("D", "T"), &["a"]).await, None);
        assert_eq!(found(key("C", "U"), &["a"]).await, None);
        // MSAL's shape: no account, sorted target.
        let file: Value = serde_json::from_slice(
            &fs.files.lock().unwrap()[Path::new("/home/u/.IdentityService/t.nocae")],
        )
        .unwrap();
        let entry = &file["AccessToken"]["-login.example-accesstoken-c-t-a b"];
        assert!(entry["home_account_id"].is_null(), "{file}");
        assert!(
            file["AppMetadata"]["appmetadata-login.example-C"].is_object(),
            "{file}"
        );
        clock.advance(Duration::minutes(55) + Duration::seconds(1));
        assert_eq!(
            found(key("C", "T"), &["a"]).await,
            None,
            "within the refresh margin"
        );
    }

    #[tokio::test]
    async fn cae_and_other_tokens_are_kept_apart() {
        let clock = day_9000();
        let fs = Arc::new(MemoryFs::default());
        let c = cache(fs.clone(), clock.clone());
        c.store(&record("h"), &grant("cae-rt", clock.now()), "o", true)
            .await;
        assert_eq!(rt(&c, &record("h"), true).await.as_deref(), Some("cae-rt"));
        assert_eq!(rt(&c, &record("h"), false).await, None);
        let files = fs.files.lock().unwrap();
        assert!(files.contains_key(Path::new("/home/u/.IdentityService/t.cae")));
        assert!(!files.contains_key(Path::new("/home/u/.IdentityService/t.nocae")));
    }

    #[tokio::test]
    async fn the_newest_refresh_token_of_the_account_is_found_whatever_the_port() {
        let clock = day_9000();
        let fs = Arc::new(MemoryFs::default());
        let c = cache(fs.clone(), clock.clone());
        assert_eq!(
            c.path(false),
            PathBuf::from("/home/u/.IdentityService/t.nocae")
        );
        assert_eq!(
            c.path(true),
            PathBuf::from("/home/u/.IdentityService/t.cae")
        );
        c.store(
            &record("h:1"),
            &grant("old", clock.now()),
            "organizations",
            false,
        )
        .await;
        clock.advance(Duration::seconds(10));
        // Another scope set: a second entry, newer.
        let mut newer = grant("new", clock.now());
        newer.target = "c".into();
        c.store(&record("h:1"), &newer, "organizations", false)
            .await;
        assert_eq!(rt(&c, &record("H:2"), false).await.as_deref(), Some("new"));
        // Another client or account: nothing.
        let mut other = record("h:1");
        other.client_id = "D".into();
        assert!(c.refresh_token(&other, false).await.unwrap().is_none());
        other = record("h:1");
        other.home_account_id = "x.y".into();
        assert!(c.refresh_token(&other, false).await.unwrap().is_none());
        let mut elsewhere = record("other-host");
        elsewhere.authority = "other-host".into();
        assert!(c.refresh_token(&elsewhere, false).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_held_lock_is_waited_for_then_written_without() {
        let clock = day_9000();
        let fs = Arc::new(MemoryFs {
            locked: true,
            ..MemoryFs::default()
        });
        let c = cache(fs.clone(), clock.clone());
        let before = clock.now();
        c.store(&record("h"), &grant("rt", before), "organizations", false)
            .await;
        assert_eq!(clock.now() - before, LOCK_WAIT);
        assert_eq!(rt(&c, &record("h"), false).await.as_deref(), Some("rt"));
    }

    #[test]
    fn names_and_home_are_checked() {
        let fs = Arc::new(MemoryFs::default());
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
        for name in ["", "a/b", "..", "."] {
            let options = TokenCachePersistenceOptions {
                name: name.into(),
                allow_unencrypted_storage: true,
            };
            assert!(
                PersistentCache::new(&options, &os(fs.clone(), clock.clone())).is_err(),
                "{name}"
            );
        }
        let homeless = Os {
            env: Arc::new(MapEnv::new()),
            ..Os::default()
        };
        let options = TokenCachePersistenceOptions {
            allow_unencrypted_storage: true,
            ..Default::default()
        };
        let e = PersistentCache::new(&options, &homeless)
            .unwrap_err()
            .to_string();
        assert!(e.contains("HOME"), "{e}");
    }

    #[test]
    fn environment_drops_the_port_only() {
        assert_eq!(environment("127.0.0.1:8443"), "127.0.0.1");
        assert_eq!(
            environment("login.microsoftonline.com"),
            "login.microsoftonline.com"
        );
        assert_eq!(environment("[::1]:8443"), "[::1]");
        assert_eq!(environment("Localhost:1"), "localhost");
    }
}
