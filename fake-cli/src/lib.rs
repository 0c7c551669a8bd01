//! Shared code for the fake `az` and `azd`: where the emulator is, the signed-in account kept
//! in the tools' config directories, and getting tokens from the emulator.
//!
//! Both binaries find the emulator at login from `ENTRA_EMULATOR_READY_FILE` (the emulator's
//! ready file) or from `AZURE_AUTHORITY_HOST` plus `SSL_CERT_FILE`, and remember it with the
//! account in `AZURE_CONFIG_DIR` (default `~/.azure`) or `AZD_CONFIG_DIR` (default `~/.azd`),
//! so later commands work from any working directory and environment.
//!
//! Failure modes for tests, switched by `FAKE_AZ_MODE` / `FAKE_AZD_MODE`:
//! `not-logged-in`, `old-cli` (az: no `expires_on`), `malformed` (stdout that is not JSON),
//! `hang` (until killed), `hang:SECONDS` / `slow:MILLISECONDS` (wait, then behave normally),
//! `fail:EXIT_CODE:STDERR`. Faults injected into the emulator (see `entra_emulator::faults`)
//! reach the tools too: they get their tokens from its token endpoint.
#![warn(missing_docs)]
#![allow(clippy::disallowed_methods)] // Programs read their own environment and files.

pub mod az_main;
pub mod azd_main;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;

/// The Azure CLI's public client id; the Azure Developer CLI uses the same one here.
pub const CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/// The signed-in user when `login` names none (the emulator's seeded user).
pub const DEFAULT_USER: &str = "emulator.user@emulator.onmicrosoft.com";
/// That user's password in the emulator's seed.
pub const DEFAULT_PASSWORD: &str = "emulator-user-password";
/// The seeded tenant.
pub const DEFAULT_TENANT: &str = "11111111-1111-1111-1111-111111111111";
/// The subscription the tools report.
pub const DEFAULT_SUBSCRIPTION: &str = "cccccccc-cccc-cccc-cccc-cccccccccccc";
/// Its name.
pub const DEFAULT_SUBSCRIPTION_NAME: &str = "Emulator Subscription";

use entra_emulator_contract::ReadyInfo;
pub use entra_emulator_contract::cli::{Account, Endpoint, Profile};

/// An error a CLI prints on stderr before exiting 1.
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

/// The config directory from `variable`, else `~/<default>`.
pub fn config_dir(variable: &str, default: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(variable).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    home.join(default)
}

/// Finds the emulator from the environment (used at login).
///
/// # Errors
/// When neither `ENTRA_EMULATOR_READY_FILE` nor `AZURE_AUTHORITY_HOST` says where it is.
pub fn discover_endpoint() -> Result<Endpoint, CliError> {
    if let Some(path) = std::env::var_os("ENTRA_EMULATOR_READY_FILE") {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CliError(format!(
                "cannot read ENTRA_EMULATOR_READY_FILE {}: {e}",
                PathBuf::from(&path).display()
            ))
        })?;
        let ready: ReadyInfo = serde_json::from_str(&text)?;
        return Ok(Endpoint {
            authority: ready.https_url,
            ca_cert_path: Some(ready.ca_cert_path),
        });
    }
    let authority = std::env::var("AZURE_AUTHORITY_HOST").map_err(|_| {
        CliError("cannot find the Entra emulator: set ENTRA_EMULATOR_READY_FILE to its ready file, or AZURE_AUTHORITY_HOST and SSL_CERT_FILE".into())
    })?;
    let ca = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"]
        .iter()
        .find_map(|v| std::env::var_os(v).filter(|p| !p.is_empty()))
        .map(PathBuf::from);
    Ok(Endpoint {
        authority: authority.trim_end_matches('/').to_string(),
        ca_cert_path: ca,
    })
}

fn http_client(endpoint: &Endpoint) -> Result<reqwest::Client, CliError> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30));
    if let Some(path) = &endpoint.ca_cert_path {
        let pem = std::fs::read(path).map_err(|e| {
            CliError(format!(
                "cannot read the CA certificate {}: {e}",
                path.display()
            ))
        })?;
        builder = builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem)?);
    }
    Ok(builder.build()?)
}

fn client_options(endpoint: &Endpoint) -> Result<azure_core::http::ClientOptions, CliError> {
    let mut custom = azure_core::cloud::CustomConfiguration::default();
    custom.authority_host = endpoint.authority.clone();
    Ok(azure_core::http::ClientOptions {
        cloud: Some(Arc::new(azure_core::cloud::CloudConfiguration::from(
            custom,
        ))),
        transport: Some(azure_core::http::Transport::new(Arc::new(http_client(
            endpoint,
        )?))),
        ..Default::default()
    })
}

/// A user grant against the token endpoint; returns the parsed success body.
async fn user_grant(
    endpoint: &Endpoint,
    tenant: &str,
    form: &[(&str, &str)],
) -> Result<serde_json::Value, CliError> {
    let url = format!("{}/{tenant}/oauth2/v2.0/token", endpoint.authority);
    let response = http_client(endpoint)?.post(url).form(form).send().await?;
    let ok = response.status().is_success();
    let body: serde_json::Value = response.json().await?;
    if ok {
        return Ok(body);
    }
    let description = body["error_description"]
        .as_str()
        .unwrap_or("the token request failed");
    let first = description.split("\r\n").next().unwrap_or(description);
    Err(CliError(first.to_string()))
}

/// Signs a user in with the password grant; returns the refresh token.
///
/// # Errors
/// The Entra error text (AADSTS…).
pub async fn password_login(
    endpoint: &Endpoint,
    tenant: &str,
    username: &str,
    password: &str,
) -> Result<String, CliError> {
    let body = user_grant(
        endpoint,
        tenant,
        &[
            ("grant_type", "password"),
            ("client_id", CLI_CLIENT_ID),
            ("username", username),
            ("password", password),
            (
                "scope",
                "https://management.azure.com/.default offline_access openid profile",
            ),
        ],
    )
    .await?;
    Ok(body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// A token and its expiry (Unix seconds).
#[derive(Debug)]
pub struct Token {
    /// The access token.
    pub token: String,
    /// When it expires.
    pub expires_on: i64,
}

/// Gets a token for `scopes` from the emulator; a user's refresh token is rotated and the
/// profile saved to `dir`.
///
/// # Errors
/// The Entra error text (AADSTS…) or what else failed.
pub async fn token(
    profile: &mut Profile,
    dir: &Path,
    scopes: &[String],
    tenant: Option<&str>,
) -> Result<Token, CliError> {
    let tenant = tenant.unwrap_or(&profile.tenant).to_string();
    if let Account::User { .. } = profile.account {
        return user_token(profile, dir, scopes, &tenant).await;
    }
    let credential = app_credential(&profile.account, &profile.endpoint, &tenant)?;
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let token = credential
        .get_token(&scope_refs, None)
        .await
        .map_err(|e| CliError(inner_message(&e)))?;
    Ok(Token {
        token: token.token.secret().to_string(),
        expires_on: token.expires_on.unix_timestamp(),
    })
}

/// A user's token through the refresh-token grant; the rotated refresh token is saved.
async fn user_token(
    profile: &mut Profile,
    dir: &Path,
    scopes: &[String],
    tenant: &str,
) -> Result<Token, CliError> {
    let Account::User { refresh_token, .. } = &mut profile.account else {
        return Err(CliError("not a user account".into()));
    };
    let scope = format!("{} offline_access", scopes.join(" "));
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", CLI_CLIENT_ID),
        ("refresh_token", refresh_token.as_str()),
        ("scope", scope.as_str()),
    ];
    let body = user_grant(&profile.endpoint, tenant, &form).await?;
    if let Some(rotated) = body["refresh_token"].as_str() {
        *refresh_token = rotated.to_string();
        profile.save(dir)?;
    }
    let expires_in = body["expires_in"].as_i64().unwrap_or(3599);
    let token = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok(Token {
        token,
        expires_on: time::OffsetDateTime::now_utc().unix_timestamp() + expires_in,
    })
}

/// The `azure_identity` credential a service principal, federated or managed-identity login
/// signs in with.
fn app_credential(
    account: &Account,
    endpoint: &Endpoint,
    tenant: &str,
) -> Result<Arc<dyn TokenCredential>, CliError> {
    let failed = |e: azure_core::Error| CliError(e.to_string());
    let credential: Arc<dyn TokenCredential> = match account {
        Account::User { .. } => {
            return Err(CliError("a user account has no app credential".into()));
        }
        Account::ServicePrincipalSecret { client_id, secret } => {
            secret_credential(endpoint, tenant, client_id, secret)?
        }
        Account::ServicePrincipalCertificate { client_id, path } => {
            certificate_credential(endpoint, tenant, client_id, path)?
        }
        Account::Federated { client_id, token } => azure_identity::ClientAssertionCredential::new(
            tenant.to_string(),
            client_id.clone(),
            FixedAssertion(token.clone()),
            Some(azure_identity::ClientAssertionCredentialOptions {
                client_options: client_options(endpoint)?,
                ..Default::default()
            }),
        )
        .map_err(failed)?,
        Account::ManagedIdentity { client_id } => {
            let user_assigned_id = client_id
                .clone()
                .map(azure_identity::UserAssignedId::ClientId);
            let options = azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id,
                ..Default::default()
            };
            azure_identity::ManagedIdentityCredential::new(Some(options)).map_err(failed)?
        }
    };
    Ok(credential)
}

fn secret_credential(
    endpoint: &Endpoint,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> Result<Arc<dyn TokenCredential>, CliError> {
    let credential = azure_identity::ClientSecretCredential::new(
        tenant,
        client_id.to_string(),
        secret.to_string().into(),
        Some(azure_identity::ClientSecretCredentialOptions {
            client_options: client_options(endpoint)?,
            ..Default::default()
        }),
    )
    .map_err(|e| CliError(e.to_string()))?;
    Ok(credential)
}

fn certificate_credential(
    endpoint: &Endpoint,
    tenant: &str,
    client_id: &str,
    path: &Path,
) -> Result<Arc<dyn TokenCredential>, CliError> {
    let bytes = std::fs::read(path)?;
    let credential = azure_identity::ClientCertificateCredential::new(
        tenant.to_string(),
        client_id.to_string(),
        bytes.into(),
        Some(azure_identity::ClientCertificateCredentialOptions {
            client_options: client_options(endpoint)?,
            ..Default::default()
        }),
    )
    .map_err(|e| CliError(e.to_string()))?;
    Ok(credential)
}

/// The innermost useful message of a credential error (the AADSTS text, without the
/// credential's wrapper).
fn inner_message(e: &azure_core::Error) -> String {
    std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string())
        .split("\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

#[derive(Debug)]
struct FixedAssertion(String);

#[async_trait::async_trait]
impl azure_identity::ClientAssertion for FixedAssertion {
    async fn secret(
        &self,
        _: Option<azure_core::http::ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        Ok(self.0.clone())
    }
}

/// Runs a command's future on a single-threaded runtime (the tools' `main`s).
///
/// # Errors
/// When the runtime cannot be built.
pub fn block_on<F: std::future::Future>(future: F) -> std::io::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// A failure mode chosen by `FAKE_AZ_MODE` / `FAKE_AZD_MODE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Behave normally.
    Normal,
    /// Act as if nobody is signed in.
    NotLoggedIn,
    /// az: omit `expires_on` (Azure CLI before 2.54).
    OldCli,
    /// Print something that is not JSON.
    Malformed,
    /// Sleep this many seconds first (`hang` alone: an hour, i.e. until killed).
    Hang(u64),
    /// Sleep this many milliseconds first.
    Slow(u64),
    /// Exit with this code and stderr.
    Fail(i32, String),
}

impl Mode {
    /// Reads the mode from `variable`.
    pub fn from_env(variable: &str) -> Self {
        let Ok(value) = std::env::var(variable) else {
            return Self::Normal;
        };
        match value.as_str() {
            "not-logged-in" => Self::NotLoggedIn,
            "old-cli" => Self::OldCli,
            "malformed" => Self::Malformed,
            "hang" => Self::Hang(3600),
            other => {
                if let Some(secs) = other.strip_prefix("hang:") {
                    Self::Hang(secs.parse().unwrap_or(3600))
                } else if let Some(ms) = other.strip_prefix("slow:") {
                    Self::Slow(ms.parse().unwrap_or(1000))
                } else if let Some(rest) = other.strip_prefix("fail:") {
                    let (code, stderr) = rest.split_once(':').unwrap_or((rest, ""));
                    Self::Fail(code.parse().unwrap_or(1), stderr.to_string())
                } else {
                    Self::Normal
                }
            }
        }
    }

    /// Applies the modes that act before the command runs (hang, fail). Returns an exit code
    /// when the process should stop.
    pub fn before(&self) -> Option<i32> {
        match self {
            Self::Hang(secs) => {
                std::thread::sleep(Duration::from_secs(*secs));
                None
            }
            Self::Slow(ms) => {
                std::thread::sleep(Duration::from_millis(*ms));
                None
            }
            Self::Fail(code, stderr) => {
                eprintln!("{stderr}");
                Some(*code)
            }
            _ => None,
        }
    }
}
