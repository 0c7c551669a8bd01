//! The files the Entra emulator writes for other programs, as one set of serde types shared
//! by the emulator (which writes them), the fake `az`/`azd` (which read and update the CLI
//! profile), the conformance harness, and users' own Rust tests.
//!
//! # The ready file
//!
//! `entra-emulator --ready-file PATH` writes [`ReadyInfo`] as JSON once it listens:
//!
//! ```json
//! {
//!   "https_url": "https://127.0.0.1:41234",
//!   "http_url": "http://127.0.0.1:41235",
//!   "service_fabric_url": "https://127.0.0.1:41236",
//!   "service_fabric_thumbprint": "5D4E…",
//!   "ca_cert_path": "/home/me/.entra-emulator/ca.pem",
//!   "state_dir": "/home/me/.entra-emulator",
//!   "pid": 4242,
//!   "profiles": { "client_secret": { "AZURE_TENANT_ID": "…", "AZURE_CLIENT_ID": "…" } }
//! }
//! ```
//!
//! The emulator removes the file when it stops. Each profile is a set of environment variables that points an unmodified client at the
//! emulator for one flow (`client_secret`, `managed_identity_imds`, `azure_cli`, …).
//!
//! # The CLI profile
//!
//! The fake `az`/`azd` keep their signed-in state as [`cli::Profile`] in
//! `$AZURE_CONFIG_DIR/entra-emulator-profile.json` (`$AZD_CONFIG_DIR` for `azd`):
//!
//! ```json
//! {
//!   "endpoint": { "authority": "https://127.0.0.1:41234", "ca_cert_path": "/…/ca.pem" },
//!   "tenant": "11111111-1111-1111-1111-111111111111",
//!   "subscription": "cccccccc-cccc-cccc-cccc-cccccccccccc",
//!   "account": { "kind": "user", "username": "…", "refresh_token": "…" }
//! }
//! ```
//!
//! `account.kind` is one of `user`, `service_principal_secret`,
//! `service_principal_certificate`, `federated`, `managed_identity`.
#![warn(missing_docs)]

pub mod cli;
mod ready;

pub use ready::ReadyInfo;

use std::io;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file; `private` makes it readable by the owner only.
///
/// # Errors
/// The I/O error.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    std::fs::rename(&tmp, path)
}
