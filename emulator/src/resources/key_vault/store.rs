//! The vaults' secrets: versions, attributes, soft-deleted secrets. One lock for all vaults
//! (operations are short); each change of a vault is written to `key-vaults/<name>.json` in the
//! state directory (atomically, readable by the owner only) when the emulator has one.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::RECOVERABLE_DAYS;

/// One version of a secret. `Debug` leaves the value out.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Version {
    /// 32 lower-case hex digits.
    pub(crate) id: String,
    pub(crate) value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tags: Option<BTreeMap<String, String>>,
    pub(crate) enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) not_before: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires: Option<i64>,
    pub(crate) created: i64,
    pub(crate) updated: i64,
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Version")
            .field("id", &self.id)
            .field("value", &"<redacted>")
            .field("enabled", &self.enabled)
            .field("created", &self.created)
            .field("updated", &self.updated)
            .finish_non_exhaustive()
    }
}

/// A secret: its name as first set, and its versions, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Secret {
    pub(crate) name: String,
    pub(crate) versions: Vec<Version>,
}

impl Secret {
    /// The latest version.
    pub(crate) fn latest(&self) -> Option<&Version> {
        self.versions.last()
    }

    fn version_mut(&mut self, version: Option<&str>) -> Option<&mut Version> {
        match version {
            None => self.versions.last_mut(),
            Some(v) => self
                .versions
                .iter_mut()
                .find(|x| x.id.eq_ignore_ascii_case(v)),
        }
    }
}

/// A soft-deleted secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Deleted {
    pub(crate) secret: Secret,
    pub(crate) deleted_date: i64,
    pub(crate) scheduled_purge_date: i64,
}

/// One vault's data (the file's schema).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct VaultData {
    /// Lower-case name → secret.
    secrets: BTreeMap<String, Secret>,
    /// Lower-case name → deleted secret.
    deleted: BTreeMap<String, Deleted>,
}

/// A set or an update of a secret's properties.
#[derive(Debug, Clone, Default)]
pub(crate) struct SecretChange {
    pub(crate) content_type: Option<String>,
    pub(crate) tags: Option<BTreeMap<String, String>>,
    pub(crate) enabled: Option<bool>,
    pub(crate) not_before: Option<i64>,
    pub(crate) expires: Option<i64>,
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// No such secret (or version).
    NotFound,
    /// No such deleted secret.
    DeletedNotFound,
    /// The name belongs to a deleted, not yet purged secret.
    DeletedConflict,
    /// A live secret has that name (recover).
    LiveConflict,
    /// The vault is unknown.
    NoVault,
    /// The change could not be saved.
    Io(String),
}

/// Every vault's data. `Debug` names the vaults and counts their secrets, never a value.
pub(crate) struct Vaults {
    dir: Option<PathBuf>,
    data: Mutex<HashMap<String, VaultData>>,
}

impl std::fmt::Debug for Vaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let data = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let mut vaults = f.debug_map();
        for (name, vault) in data.iter() {
            vaults.entry(name, &format!("{} secrets", vault.secrets.len()));
        }
        vaults.finish()
    }
}

impl Vaults {
    /// The vaults `names`, loaded from `dir` (`None`: memory only). A file that cannot be read
    /// is an error: starting empty would lose the user's secrets on the next write.
    pub(crate) fn load(dir: Option<PathBuf>, names: &[String]) -> Result<Self, String> {
        let mut data = HashMap::new();
        for name in names {
            let key = name.to_ascii_lowercase();
            let vault = match &dir {
                Some(dir) => read_vault(&dir.join(format!("{key}.json")))?,
                None => VaultData::default(),
            };
            data.insert(key, vault);
        }
        Ok(Self {
            dir,
            data: Mutex::new(data),
        })
    }

    /// Runs `f` on vault `vault`; saves it when `f` succeeds and changed something.
    fn with<T>(
        &self,
        vault: &str,
        change: bool,
        f: impl FnOnce(&mut VaultData) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let key = vault.to_ascii_lowercase();
        let mut all = self.data.lock().unwrap_or_else(|e| e.into_inner());
        let data = all.get_mut(&key).ok_or(StoreError::NoVault)?;
        if !change {
            return f(data);
        }
        let before = data.clone();
        let result = f(data)?;
        if let Some(dir) = &self.dir
            && let Err(e) = write_vault(dir, &key, data)
        {
            *data = before;
            return Err(StoreError::Io(e));
        }
        Ok(result)
    }

    /// Adds a version of `name` (creating the secret).
    pub(crate) fn set(
        &self,
        vault: &str,
        name: &str,
        value: String,
        change: SecretChange,
        now: i64,
    ) -> Result<(String, Version), StoreError> {
        self.with(vault, true, |data| {
            let key = name.to_ascii_lowercase();
            if data.deleted.contains_key(&key) {
                return Err(StoreError::DeletedConflict);
            }
            let version = Version {
                id: uuid::Uuid::new_v4().simple().to_string(),
                value,
                content_type: change.content_type,
                tags: change.tags,
                enabled: change.enabled.unwrap_or(true),
                not_before: change.not_before,
                expires: change.expires,
                created: now,
                updated: now,
            };
            let secret = data.secrets.entry(key).or_insert_with(|| Secret {
                name: name.to_string(),
                versions: Vec::new(),
            });
            secret.versions.push(version.clone());
            Ok((secret.name.clone(), version))
        })
    }

    /// A version of `name` (`None`: the latest).
    pub(crate) fn get(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<(String, Version), StoreError> {
        self.with(vault, false, |data| {
            let secret = data
                .secrets
                .get_mut(&name.to_ascii_lowercase())
                .ok_or(StoreError::NotFound)?;
            let found = secret
                .version_mut(version)
                .ok_or(StoreError::NotFound)?
                .clone();
            Ok((secret.name.clone(), found))
        })
    }

    /// Changes a version's properties (`None`: the latest); the value stays.
    pub(crate) fn update(
        &self,
        vault: &str,
        name: &str,
        version: Option<&str>,
        change: SecretChange,
        now: i64,
    ) -> Result<(String, Version), StoreError> {
        self.with(vault, true, |data| {
            let secret = data
                .secrets
                .get_mut(&name.to_ascii_lowercase())
                .ok_or(StoreError::NotFound)?;
            let v = secret.version_mut(version).ok_or(StoreError::NotFound)?;
            if change.content_type.is_some() {
                v.content_type = change.content_type;
            }
            if change.tags.is_some() {
                v.tags = change.tags;
            }
            if let Some(enabled) = change.enabled {
                v.enabled = enabled;
            }
            if change.not_before.is_some() {
                v.not_before = change.not_before;
            }
            if change.expires.is_some() {
                v.expires = change.expires;
            }
            v.updated = now;
            let updated = v.clone();
            Ok((secret.name.clone(), updated))
        })
    }

    /// Every secret with its latest version, by name.
    pub(crate) fn list(&self, vault: &str) -> Result<Vec<(String, Version)>, StoreError> {
        self.with(vault, false, |data| {
            Ok(data
                .secrets
                .values()
                .filter_map(|s| Some((s.name.clone(), s.latest()?.clone())))
                .collect())
        })
    }

    /// Every version of `name`, oldest first.
    pub(crate) fn versions(
        &self,
        vault: &str,
        name: &str,
    ) -> Result<Vec<(String, Version)>, StoreError> {
        self.with(vault, false, |data| {
            let secret = data
                .secrets
                .get(&name.to_ascii_lowercase())
                .ok_or(StoreError::NotFound)?;
            Ok(secret
                .versions
                .iter()
                .map(|v| (secret.name.clone(), v.clone()))
                .collect())
        })
    }

    /// Soft-deletes `name`.
    pub(crate) fn delete(&self, vault: &str, name: &str, now: i64) -> Result<Deleted, StoreError> {
        self.with(vault, true, |data| {
            let key = name.to_ascii_lowercase();
            let secret = data.secrets.remove(&key).ok_or(StoreError::NotFound)?;
            let deleted = Deleted {
                secret,
                deleted_date: now,
                scheduled_purge_date: now + RECOVERABLE_DAYS * 86_400,
            };
            data.deleted.insert(key, deleted.clone());
            Ok(deleted)
        })
    }

    /// A deleted secret.
    pub(crate) fn deleted(&self, vault: &str, name: &str) -> Result<Deleted, StoreError> {
        self.with(vault, false, |data| {
            data.deleted
                .get(&name.to_ascii_lowercase())
                .cloned()
                .ok_or(StoreError::DeletedNotFound)
        })
    }

    /// Every deleted secret, by name.
    pub(crate) fn deleted_list(&self, vault: &str) -> Result<Vec<Deleted>, StoreError> {
        self.with(vault, false, |data| {
            Ok(data.deleted.values().cloned().collect())
        })
    }

    /// Brings a deleted secret back; its latest version.
    pub(crate) fn recover(&self, vault: &str, name: &str) -> Result<(String, Version), StoreError> {
        self.with(vault, true, |data| {
            let key = name.to_ascii_lowercase();
            if data.secrets.contains_key(&key) {
                return Err(StoreError::LiveConflict);
            }
            let deleted = data
                .deleted
                .remove(&key)
                .ok_or(StoreError::DeletedNotFound)?;
            let latest = deleted
                .secret
                .latest()
                .cloned()
                .ok_or(StoreError::NotFound)?;
            let name = deleted.secret.name.clone();
            data.secrets.insert(key, deleted.secret);
            Ok((name, latest))
        })
    }

    /// Removes a deleted secret for good.
    pub(crate) fn purge(&self, vault: &str, name: &str) -> Result<(), StoreError> {
        self.with(vault, true, |data| {
            data.deleted
                .remove(&name.to_ascii_lowercase())
                .map(|_| ())
                .ok_or(StoreError::DeletedNotFound)
        })
    }
}

fn read_vault(path: &std::path::Path) -> Result<VaultData, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not a Key Vault data file ({e}); move it away to start this vault empty",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(VaultData::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write_vault(dir: &std::path::Path, key: &str, data: &VaultData) -> Result<(), String> {
    let path = dir.join(format!("{key}.json"));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let bytes = serde_json::to_vec_pretty(data).map_err(std::io::Error::other)?;
        crate::pki::write_atomic(&path, &bytes, true)
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vaults(dir: Option<PathBuf>) -> Vaults {
        Vaults::load(dir, &["v".to_string()]).unwrap()
    }

    #[test]
    fn versions_accumulate_and_the_latest_wins() {
        let v = vaults(None);
        let (_, first) = v
            .set("v", "Db", "one".into(), SecretChange::default(), 10)
            .unwrap();
        let (name, second) = v
            .set("v", "db", "two".into(), SecretChange::default(), 20)
            .unwrap();
        assert_eq!(name, "Db", "the name keeps its first spelling");
        assert_eq!(v.get("v", "DB", None).unwrap().1.value, "two");
        assert_eq!(v.get("v", "db", Some(&first.id)).unwrap().1.value, "one");
        assert_eq!(v.versions("v", "db").unwrap().len(), 2);
        assert_eq!(v.list("v").unwrap(), vec![("Db".to_string(), second)]);
        assert_eq!(v.get("v", "db", Some("nope")), Err(StoreError::NotFound));
        assert_eq!(v.get("other", "db", None), Err(StoreError::NoVault));
    }

    #[test]
    fn soft_delete_recover_and_purge() {
        let v = vaults(None);
        v.set("v", "s", "x".into(), SecretChange::default(), 1)
            .unwrap();
        let deleted = v.delete("v", "s", 100).unwrap();
        assert_eq!(deleted.scheduled_purge_date, 100 + 90 * 86_400);
        assert_eq!(v.get("v", "s", None), Err(StoreError::NotFound));
        assert_eq!(
            v.set("v", "s", "y".into(), SecretChange::default(), 2),
            Err(StoreError::DeletedConflict)
        );
        assert_eq!(v.recover("v", "s").unwrap().1.value, "x");
        v.delete("v", "s", 101).unwrap();
        v.purge("v", "s").unwrap();
        assert_eq!(v.deleted("v", "s"), Err(StoreError::DeletedNotFound));
        assert!(
            v.set("v", "s", "z".into(), SecretChange::default(), 3)
                .is_ok()
        );
    }

    #[test]
    fn data_survives_a_reload_and_a_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv");
        vaults(Some(path.clone()))
            .set("v", "s", "kept".into(), SecretChange::default(), 1)
            .unwrap();
        assert_eq!(
            vaults(Some(path.clone()))
                .get("v", "s", None)
                .unwrap()
                .1
                .value,
            "kept"
        );
        std::fs::write(path.join("v.json"), b"{not json").unwrap();
        let err = Vaults::load(Some(path), &["v".to_string()]).unwrap_err();
        assert!(err.contains("move it away"), "{err}");
    }
}
