//! The ready file: the contract that lets scripts in any language find the emulator and point
//! a client at it, one environment-variable profile per flow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What the ready file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReadyInfo {
    /// The HTTPS listener (Entra authority, Pipelines OIDC), e.g. `https://127.0.0.1:8443`.
    pub https_url: String,
    /// The plain HTTP listener (managed identity endpoints).
    pub http_url: String,
    /// The Service Fabric managed-identity listener (HTTPS, self-signed certificate).
    #[serde(default)]
    pub service_fabric_url: String,
    /// The SHA-1 thumbprint of the Service Fabric listener's certificate.
    #[serde(default)]
    pub service_fabric_thumbprint: String,
    /// The CA certificate that signs the HTTPS listener's certificate (PEM).
    pub ca_cert_path: PathBuf,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The emulator's process id (absent in files from older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Flow name → environment variables that point a client at the emulator for that flow.
    pub profiles: BTreeMap<String, BTreeMap<String, String>>,
    /// Key Vault name → its URL (`https://127.0.0.1:PORT`, each vault on its own listener), as
    /// a secret client's vault URL.
    #[serde(default)]
    pub key_vaults: BTreeMap<String, String>,
    /// Azure Resource Manager (tenants, subscriptions, cloud metadata), e.g. for
    /// `az cloud register --endpoint-resource-manager`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm_url: Option<String>,
    /// Transparent mode's proxy (`http://127.0.0.1:PORT`): with it as `HTTPS_PROXY` and
    /// `HTTP_PROXY`, a program reaches the emulator under Azure's own host names (the
    /// `transparent` profile sets it up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    /// The CA bundle a program in transparent mode trusts: the transparent-mode CA (which may
    /// sign only for the Azure hosts the emulator answers as) and the main CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transparent_ca_bundle_path: Option<PathBuf>,
}

impl ReadyInfo {
    /// The profile named `name`.
    pub fn profile(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.profiles.get(name)
    }

    /// A profile as `export NAME='value'` lines for a POSIX shell.
    pub fn export_lines(&self, name: &str) -> Option<String> {
        let profile = self.profile(name)?;
        let mut out = String::new();
        for (k, v) in profile {
            out.push_str(&format!("export {k}='{}'\n", v.replace('\'', r"'\''")));
        }
        Some(out)
    }

    /// Writes the ready file atomically.
    ///
    /// # Errors
    /// The I/O error.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::write_atomic(path, &json, false)
    }

    /// Reads a ready file.
    ///
    /// # Errors
    /// The I/O or parse error.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }
}
