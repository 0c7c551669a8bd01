//! The persistent cache's encrypted store on Linux: the Secret Service (gnome-keyring, KWallet,
//! KeePassXC) over the D-Bus session bus, holding the cache as msal-extensions'
//! `LibsecretPersistence` does for the Python and JavaScript Azure Identity libraries: one item
//! per cache, in the default collection, labelled `MSALCache`, with the attributes
//! `MsalClientID = Microsoft.Developer.IdentityService` and libsecret's `xdg:schema = {name}.nocae`
//! (or `.cae`). The secret travels over the bus encrypted (the Secret Service's
//! `dh-ietf1024-sha256-aes128-cbc-pkcs7` session).
//!
//! The bus is the one `DBUS_SESSION_BUS_ADDRESS` names (else `$XDG_RUNTIME_DIR/bus`), both read
//! through the injected [`Os`]. Every call is bounded: a store that does not answer within
//! [`CALL_TIMEOUT`] is an error, never a hang.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use secret_service::{EncryptionType, SecretService};

use crate::os::Os;

/// How long one call into the Secret Service may take (an unlock prompt included).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CLIENT_ATTRIBUTE: (&str, &str) = ("MsalClientID", "Microsoft.Developer.IdentityService");
/// libsecret stores its schema's name in this attribute and matches it on lookup.
const SCHEMA_ATTRIBUTE: &str = "xdg:schema";
const LABEL: &str = "MSALCache";

/// A connection to the Secret Service with an encrypted session.
pub(crate) struct Keyring {
    service: SecretService<'static>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring")
    }
}

/// `future`, or an error once [`CALL_TIMEOUT`] has passed.
async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CALL_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: the Secret Service did not answer within {} s",
            CALL_TIMEOUT.as_secs()
        )),
    }
}

/// The session bus's address, as libdbus finds it.
fn bus_address(os: &Os) -> Result<String, String> {
    if let Some(address) = os.var("DBUS_SESSION_BUS_ADDRESS").filter(|a| !a.is_empty()) {
        return Ok(address);
    }
    match os.var("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Ok(format!("unix:path={dir}/bus")),
        None => Err("no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set".to_string()),
    }
}

impl Keyring {
    /// Connects to the Secret Service on the session bus and opens an encrypted session.
    ///
    /// # Errors
    /// What failed, in words for the user: no bus, no Secret Service on it, no answer.
    pub(crate) async fn connect(os: &Os) -> Result<Self, String> {
        let address = bus_address(os)?;
        let connection = bounded("cannot connect to the D-Bus session bus", async {
            zbus::connection::Builder::address(address.as_str())?
                .build()
                .await
        })
        .await?;
        let service = bounded(
            "no Secret Service answers on the session bus",
            SecretService::connect_with_existing(EncryptionType::Dh, connection),
        )
        .await?;
        Ok(Self { service })
    }

    fn attributes(schema: &str) -> HashMap<&str, &str> {
        HashMap::from([CLIENT_ATTRIBUTE, (SCHEMA_ATTRIBUTE, schema)])
    }

    /// The cache `schema` names (`{name}.nocae` or `{name}.cae`); `None` when there is none.
    ///
    /// # Errors
    /// The store refused or did not answer; a locked item it would not unlock.
    pub(crate) async fn load(&self, schema: &str) -> Result<Option<Vec<u8>>, String> {
        let found = bounded(
            "cannot search the Secret Service",
            self.service.search_items(Self::attributes(schema)),
        )
        .await?;
        let item = match (found.unlocked.first(), found.locked.first()) {
            (Some(item), _) => item,
            (None, Some(item)) => {
                bounded(
                    "the keyring holding the token cache is locked and was not unlocked",
                    item.unlock(),
                )
                .await?;
                item
            }
            (None, None) => return Ok(None),
        };
        bounded("cannot read the token cache's secret", item.get_secret())
            .await
            .map(Some)
    }

    /// Stores `cache` as the item `schema` names, replacing the one there.
    ///
    /// # Errors
    /// The store refused or did not answer; no collection to store into.
    pub(crate) async fn save(&self, schema: &str, cache: &[u8]) -> Result<(), String> {
        let collection =
            match bounded("no default keyring", self.service.get_default_collection()).await {
                Ok(collection) => collection,
                Err(_) => {
                    bounded(
                        "the Secret Service has no keyring to store the token cache in",
                        self.service.get_any_collection(),
                    )
                    .await?
                }
            };
        bounded(
            "the keyring holding the token cache is locked and was not unlocked",
            collection.ensure_unlocked(),
        )
        .await?;
        bounded(
            "cannot store the token cache in the Secret Service",
            collection.create_item(LABEL, Self::attributes(schema), cache, true, "text/plain"),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::os::MapEnv;

    fn os(vars: &[(&str, &str)]) -> Os {
        Os {
            env: Arc::new(
                vars.iter()
                    .fold(MapEnv::new(), |env, (name, value)| env.with(*name, *value)),
            ),
            ..Os::default()
        }
    }

    #[test]
    fn the_bus_is_found_as_libdbus_finds_it() {
        assert_eq!(
            bus_address(&os(&[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/a")])).unwrap(),
            "unix:path=/a"
        );
        assert_eq!(
            bus_address(&os(&[("XDG_RUNTIME_DIR", "/run/user/7")])).unwrap(),
            "unix:path=/run/user/7/bus"
        );
        let none = bus_address(&os(&[])).unwrap_err();
        assert!(none.contains("DBUS_SESSION_BUS_ADDRESS"), "{none}");
    }

    #[tokio::test]
    async fn a_bus_nobody_listens_on_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("unix:path={}/bus", dir.path().display());
        let error = Keyring::connect(&os(&[("DBUS_SESSION_BUS_ADDRESS", &address)]))
            .await
            .unwrap_err();
        assert!(
            error.starts_with("cannot connect to the D-Bus session bus"),
            "{error}"
        );
    }
}
