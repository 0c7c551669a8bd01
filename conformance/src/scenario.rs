//! Scenarios are data: one TOML file per case under `conformance/scenarios/`, read into
//! [`Scenario`]. Adding a case needs no Rust code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use entra_emulator::{Endpoint, Fault};
use serde::{Deserialize, Serialize};

/// One case: the emulator's state, the credential's inputs, and what must happen.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The file's path under the scenarios folder, without `.toml` (e.g. `client_secret/basic`).
    #[serde(skip_deserializing, default)]
    pub name: String,
    /// What the case shows.
    pub description: String,
    /// The credential: `client_secret`, `client_certificate`, `client_assertion`,
    /// `workload_identity`, `azure_pipelines`, `managed_identity`, `environment`, `default`,
    /// `azure_cli`, `azure_developer_cli`, `developer_tools`, `chained`, `device_code`,
    /// `interactive_browser`, `authorization_code`, `on_behalf_of`, and `azure_cli_login` (the
    /// real Azure CLI's own sign-in, for the `az` adapter).
    pub credential: String,
    /// The emulator ready-file profile whose variables start the environment.
    #[serde(default)]
    pub profile: Option<String>,
    /// Variables added to (or replacing) the profile's; values may hold placeholders.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables removed from the profile's.
    #[serde(default)]
    pub unset: Vec<String>,
    /// Files written to the scenario's work folder (name → contents, placeholders allowed);
    /// `{{file:NAME}}` is the path of one.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Credential options (see the adapters' documentation); string values may hold
    /// placeholders.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
    /// The scopes asked for.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Control-plane calls made before the credential runs (e.g. adding an application).
    #[serde(default)]
    pub setup: Vec<ControlCall>,
    /// Faults installed before the credential runs.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Adapters that skip this case, with the reason.
    #[serde(default)]
    pub skip: BTreeMap<String, String>,
    /// Going on from the token to a protected resource (the emulator's Key Vault).
    #[serde(default)]
    pub resource: Option<crate::resource::ResourceStep>,
    /// What must happen.
    pub expect: Expect,
}

/// The default scope: Azure Resource Manager.
pub fn default_scopes() -> Vec<String> {
    vec!["https://management.azure.com/.default".to_string()]
}

/// A control-plane call: `method` on `/_emulator{path}` with a JSON `body`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlCall {
    /// HTTP method (default POST).
    #[serde(default = "post")]
    pub method: String,
    /// The path under `/_emulator`, e.g. `/applications`.
    pub path: String,
    /// The JSON body.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

fn post() -> String {
    "POST".to_string()
}

/// A token, or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `get_token` returns a token.
    Token,
    /// Construction or `get_token` fails.
    Error,
}

/// How an error is classified, the same way in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The credential cannot work in this environment; a chain moves on
    /// (`CredentialUnavailable` in Rust, `CredentialUnavailableError` in Python).
    Unavailable,
    /// The credential is configured but authentication failed.
    Authentication,
    /// The credential could not be constructed from its inputs.
    Configuration,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Configuration => "configuration",
        })
    }
}

/// What must happen.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// A token or an error.
    pub outcome: Outcome,
    /// Claims the token must carry (exact JSON values).
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
    /// The error's kind.
    #[serde(default)]
    pub error_kind: Option<ErrorKind>,
    /// Fragments the error message must contain.
    #[serde(default)]
    pub message_contains: Vec<String>,
    /// Requests that must have reached the emulator.
    #[serde(default)]
    pub requests: Vec<ExpectedRequest>,
    /// Per-adapter replacements of `error_kind` and `message_contains` (languages word
    /// errors differently).
    #[serde(default)]
    pub adapters: BTreeMap<String, AdapterExpect>,
}

/// Adapter-specific expectations.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterExpect {
    /// Replaces `error_kind`.
    #[serde(default)]
    pub error_kind: Option<ErrorKind>,
    /// Replaces `message_contains`.
    #[serde(default)]
    pub message_contains: Option<Vec<String>>,
}

/// Requests the emulator must have logged.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRequest {
    /// The endpoint kind.
    pub endpoint: Endpoint,
    /// How many (exactly); at least one when unset.
    #[serde(default)]
    pub count: Option<usize>,
    /// At least this many.
    #[serde(default)]
    pub min: Option<usize>,
    /// Form fields each matching request must carry (exact values).
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    /// Query parameters each matching request must carry (exact values).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Only requests a fault hit (true) or none hit (false).
    #[serde(default)]
    pub faulted: Option<bool>,
}

/// Why scenarios failed to load.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Reads every `*.toml` below `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, LoadError> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    let mut scenarios = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| LoadError(format!("{}: {e}", file.display())))?;
        let mut scenario: Scenario =
            toml::from_str(&text).map_err(|e| LoadError(format!("{}: {e}", file.display())))?;
        let relative = file.strip_prefix(dir).unwrap_or(&file).with_extension("");
        scenario.name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        scenario.validate().map_err(LoadError)?;
        scenarios.push(scenario);
    }
    if scenarios.is_empty() {
        return Err(LoadError(format!(
            "no scenarios (*.toml) under {}",
            dir.display()
        )));
    }
    Ok(scenarios)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| LoadError(format!("{}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// The credential kinds scenarios may name.
pub const CREDENTIALS: &[&str] = &[
    "client_secret",
    "client_certificate",
    "client_assertion",
    "workload_identity",
    "azure_pipelines",
    "managed_identity",
    "environment",
    "default",
    "azure_cli",
    "azure_developer_cli",
    "developer_tools",
    "chained",
    "device_code",
    "interactive_browser",
    "authorization_code",
    "on_behalf_of",
    "azure_cli_login",
];

impl Scenario {
    /// Checks the case is well-formed.
    pub fn validate(&self) -> Result<(), String> {
        if !CREDENTIALS.contains(&self.credential.as_str()) {
            return Err(format!(
                "{}: unknown credential '{}'; use one of {}",
                self.name,
                self.credential,
                CREDENTIALS.join(", ")
            ));
        }
        match self.expect.outcome {
            Outcome::Token if self.expect.error_kind.is_some() => Err(format!(
                "{}: a token outcome cannot have an error_kind",
                self.name
            )),
            _ => Ok(()),
        }
    }

    /// The error kind `adapter` must report.
    pub fn error_kind_for(&self, adapter: &str) -> Option<ErrorKind> {
        self.expect
            .adapters
            .get(adapter)
            .and_then(|a| a.error_kind)
            .or(self.expect.error_kind)
    }

    /// The message fragments `adapter` must report.
    pub fn messages_for(&self, adapter: &str) -> &[String] {
        self.expect
            .adapters
            .get(adapter)
            .and_then(|a| a.message_contains.as_deref())
            .unwrap_or(&self.expect.message_contains)
    }
}
