//! The adapter interface: how one client library runs one scenario.
//!
//! The driver prepares everything language-neutral (emulator state, faults, files, the
//! environment with placeholders resolved) and hands an adapter a [`RunRequest`]; the adapter
//! builds the named credential in its language, asks for a token and returns a [`RunResult`]
//! with whatever its library logged. Two implementations ship: [`crate::rust_adapter`] (this
//! workspace's `azure_identity`, in process) and [`crate::process_adapter`], which speaks the
//! same request and result as JSON lines to any program (the Python adapter is one), so a
//! JavaScript, Go or .NET adapter is a script, not a change to the driver.

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::scenario::ErrorKind;

/// What an adapter is asked to do: build `credential` from `options` and `env`, then get a
/// token for `scopes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequest {
    /// The scenario's name (for the adapter's own logs).
    pub scenario: String,
    /// The credential kind (see [`crate::scenario::CREDENTIALS`]).
    pub credential: String,
    /// Credential options, placeholders resolved.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// The complete environment the credential sees (and passes to child processes).
    pub env: BTreeMap<String, String>,
    /// The scopes.
    pub scopes: Vec<String>,
    /// A folder the scenario may use.
    pub work_dir: PathBuf,
    /// The emulator's CA certificate (PEM), which the adapter's HTTP client must trust.
    pub ca_cert_path: PathBuf,
    /// How long the adapter may take.
    pub timeout_ms: u64,
}

/// What happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// The token on success.
    #[serde(default)]
    pub token: Option<String>,
    /// Its expiry (Unix seconds) on success.
    #[serde(default)]
    pub expires_on: Option<i64>,
    /// The error's kind on failure.
    #[serde(default)]
    pub error_kind: Option<ErrorKind>,
    /// The error's message on failure.
    #[serde(default)]
    pub message: Option<String>,
    /// Everything the library logged while the scenario ran (scanned for secrets).
    #[serde(default)]
    pub logs: String,
}

impl RunResult {
    /// A failure of the adapter itself (not of the credential under test).
    pub fn adapter_failure(message: impl Into<String>) -> Self {
        Self {
            token: None,
            expires_on: None,
            error_kind: None,
            message: Some(message.into()),
            logs: String::new(),
        }
    }
}

/// A client library under test.
#[async_trait]
pub trait Adapter: Send + Sync {
    /// A short name: the report's column, and the key of per-adapter expectations and skips.
    fn name(&self) -> &str;

    /// Whether the adapter can run here; `Err` says why not (every scenario is then skipped
    /// with that reason).
    async fn check(&self) -> Result<(), String>;

    /// The credential kinds it implements; others are skipped.
    fn supports(&self, credential: &str) -> bool;

    /// Runs one scenario.
    async fn run(&self, request: &RunRequest) -> RunResult;
}
