//! The persistent token cache for people: a signed-in user stays signed in across runs, and
//! across languages. The file is MSAL's token-cache JSON (`AccessToken`, `RefreshToken`,
//! `IdToken`, `Account`, `AppMetadata`, with MSAL's key shapes) at the place the Python and
//! JavaScript Azure Identity libraries use on Linux and macOS for a given name,
//! `~/.IdentityService/{name}.nocae`, so a sign-in made by Python `azure-identity` is used
//! silently here, and the other way round.
//!
//! Writes take msal-extensions' lock file (`{path}.lockfile`, created exclusively; waited for
//! up to 5 seconds, then written without it, as msal-extensions does) and replace the file
//! atomically, merging with what other programs wrote: entries of other accounts, clients and
//! scopes are kept. An unreadable or corrupt file is a warning and an empty cache.
//!
//! Encryption through the operating system's secret store is not in this build: the cache is
//! a plain file readable by its owner only, and only when
//! [`TokenCachePersistenceOptions::allow_unencrypted_storage`] says so.

use std::path::PathBuf;

use azure_core::credentials::Secret;
use serde_json::{Map, Value, json};
use time::Duration;

use super::{AuthenticationRecord, UserGrant};
use crate::errors::credential_error;
use crate::os::Os;

/// Where and how a user credential persists its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCachePersistenceOptions {
    /// The cache's name: tokens go to `~/.IdentityService/{name}.nocae`. Default `msal.cache`,
    /// the cache the Microsoft developer tools share; give your application its own to keep
    /// its data apart.
    pub name: String,
    /// Store the cache as a plain file (readable by its owner only) when it cannot be
    /// encrypted. This build cannot encrypt, so the option is required; the file holds refresh
    /// tokens, so protecting it is then the application's responsibility.
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

/// The suffix of the non-CAE cache (the CAE one is `.cae`).
const NON_CAE_SUFFIX: &str = ".nocae";
/// How long a write waits for another process's lock.
const LOCK_WAIT: Duration = Duration::seconds(5);
const LOCK_RETRY: Duration = Duration::milliseconds(250);

/// A cache file.
#[derive(Debug, Clone)]
pub(crate) struct PersistentCache {
    path: PathBuf,
    os: Os,
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

impl PersistentCache {
    /// The cache `options` name, in the user's home directory.
    pub(crate) fn new(options: &TokenCachePersistenceOptions, os: &Os) -> azure_core::Result<Self> {
        if !options.allow_unencrypted_storage {
            return Err(credential_error(
                "Cache encryption is impossible: this build cannot use the operating system's \
                 secret store. Set allow_unencrypted_storage in TokenCachePersistenceOptions to \
                 store the cache unencrypted (a file only its owner can read) instead",
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
        let path = PathBuf::from(home)
            .join(".IdentityService")
            .join(format!("{}{NON_CAE_SUFFIX}", options.name));
        Ok(Self {
            path,
            os: os.clone(),
        })
    }

    /// The cache's sections; empty, with a warning, when it is missing, unreadable or corrupt.
    fn load(&self) -> Map<String, Value> {
        let bytes = match self.os.fs.read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Map::new(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "the token cache is unreadable; using an empty one");
                return Map::new();
            }
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            _ => {
                tracing::warn!(path = %self.path.display(), "the token cache is not MSAL's JSON; using an empty one");
                Map::new()
            }
        }
    }

    /// The newest refresh token of `record`'s account, client and authority.
    pub(crate) fn refresh_token(&self, record: &AuthenticationRecord) -> Option<Secret> {
        let cache = self.load();
        let tokens = cache.get("RefreshToken")?.as_object()?;
        tokens
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
            .map(|s| Secret::new(s.to_string()))
    }

    /// Adds a grant's tokens and account, keeping every other entry. `realm` is the tenant the
    /// request named (MSAL keys access tokens and accounts on it).
    pub(crate) async fn store(
        &self,
        record: &AuthenticationRecord,
        grant: &UserGrant,
        realm: &str,
    ) {
        let lock_path = PathBuf::from(format!("{}.lockfile", self.path.display()));
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
        let mut cache = self.load();
        for (section, key, entry) in entries(record, grant, realm, self.os.now().unix_timestamp()) {
            let map = cache
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = map {
                map.insert(key, entry);
            }
        }
        let text = serde_json::to_vec_pretty(&Value::Object(cache)).unwrap_or_default();
        if let Err(e) = self.os.fs.write_atomic(&self.path, &text) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the token cache");
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

    fn access_token(&self, grant: &UserGrant, now: i64) -> Entry {
        let (env, expires) = (&self.env, grant.token.token.expires_on.unix_timestamp());
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
        let secret = grant.token.token.token.secret();
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
        names.access_token(grant, now),
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

    fn cache(fs: Arc<MemoryFs>, clock: Arc<ManualClock>) -> PersistentCache {
        let options = TokenCachePersistenceOptions {
            name: "t".into(),
            allow_unencrypted_storage: true,
        };
        PersistentCache::new(&options, &os(fs, clock)).unwrap()
    }

    #[tokio::test]
    async fn the_newest_refresh_token_of_the_account_is_found_whatever_the_port() {
        let clock = Arc::new(ManualClock::new(
            time::OffsetDateTime::UNIX_EPOCH + Duration::days(9000),
        ));
        let fs = Arc::new(MemoryFs::default());
        let c = cache(fs.clone(), clock.clone());
        assert_eq!(c.path, PathBuf::from("/home/u/.IdentityService/t.nocae"));
        c.store(&record("h:1"), &grant("old", clock.now()), "organizations")
            .await;
        clock.advance(Duration::seconds(10));
        // Another scope set: a second entry, newer.
        let mut newer = grant("new", clock.now());
        newer.target = "c".into();
        c.store(&record("h:1"), &newer, "organizations").await;
        assert_eq!(c.refresh_token(&record("H:2")).unwrap().secret(), "new");
        // Another client or account: nothing.
        let mut other = record("h:1");
        other.client_id = "D".into();
        assert!(c.refresh_token(&other).is_none());
        other = record("h:1");
        other.home_account_id = "x.y".into();
        assert!(c.refresh_token(&other).is_none());
        let mut elsewhere = record("other-host");
        elsewhere.authority = "other-host".into();
        assert!(c.refresh_token(&elsewhere).is_none());
    }

    #[tokio::test]
    async fn a_held_lock_is_waited_for_then_written_without() {
        let clock = Arc::new(ManualClock::new(
            time::OffsetDateTime::UNIX_EPOCH + Duration::days(9000),
        ));
        let fs = Arc::new(MemoryFs {
            locked: true,
            ..MemoryFs::default()
        });
        let c = cache(fs.clone(), clock.clone());
        let before = clock.now();
        c.store(&record("h"), &grant("rt", before), "organizations")
            .await;
        assert_eq!(clock.now() - before, LOCK_WAIT);
        assert_eq!(c.refresh_token(&record("h")).unwrap().secret(), "rt");
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
