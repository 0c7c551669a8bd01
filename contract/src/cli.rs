//! The fake `az`/`azd`'s signed-in profile: where the emulator is and how the account
//! authenticates. The emulator writes one for its seeded user into each CLI config directory;
//! `az login` / `azd auth login` replace it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The profile's file name inside a CLI config directory.
pub const PROFILE_FILE: &str = "entra-emulator-profile.json";

/// Where the emulator is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// The authority host, e.g. `https://127.0.0.1:8443`.
    pub authority: String,
    /// The CA certificate to trust for it.
    pub ca_cert_path: Option<PathBuf>,
}

/// How the account authenticates.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Account {
    /// A user, through refresh tokens.
    User {
        /// Sign-in name.
        username: String,
        /// The latest refresh token.
        refresh_token: String,
    },
    /// A service principal with a secret.
    ServicePrincipalSecret {
        /// Client id.
        client_id: String,
        /// Secret.
        secret: String,
    },
    /// A service principal with a certificate file (PEM or PKCS#12).
    ServicePrincipalCertificate {
        /// Client id.
        client_id: String,
        /// The certificate file.
        path: PathBuf,
    },
    /// A service principal with a federated token.
    Federated {
        /// Client id.
        client_id: String,
        /// The token.
        token: String,
    },
    /// The host's managed identity.
    ManagedIdentity {
        /// A user-assigned client id.
        client_id: Option<String>,
    },
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::User { username, .. } => format!("User({username})"),
            Self::ServicePrincipalSecret { client_id, .. } => {
                format!("ServicePrincipalSecret({client_id})")
            }
            Self::ServicePrincipalCertificate { client_id, .. } => {
                format!("ServicePrincipalCertificate({client_id})")
            }
            Self::Federated { client_id, .. } => format!("Federated({client_id})"),
            Self::ManagedIdentity { client_id } => format!("ManagedIdentity({client_id:?})"),
        };
        f.write_str(&kind)
    }
}

/// The signed-in state in a config directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Where the emulator is.
    pub endpoint: Endpoint,
    /// The tenant.
    pub tenant: String,
    /// The subscription.
    pub subscription: String,
    /// How to authenticate.
    pub account: Account,
}

impl Profile {
    /// Loads the profile in `dir`, if signed in.
    pub fn load(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join(PROFILE_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Saves the profile in `dir` (private to the user).
    ///
    /// # Errors
    /// The I/O error.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::write_atomic(&dir.join(PROFILE_FILE), &json, true)
    }

    /// Removes the profile in `dir`.
    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(PROFILE_FILE));
    }
}
