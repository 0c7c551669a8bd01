//! The running emulator: the [`Emulator`] handle (URLs, client options, control methods).
//! `builder` starts it, `listener` serves connections, `files` keeps the files clients read.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use entra_emulator_contract::cli::{Account, Endpoint as CliEndpoint, Profile};

use crate::clock::{Clock, SystemClock};
use crate::config::{
    Application, CertificateSpec, ClientSecret, FederatedCredential, Seed, Tenant,
};
use crate::error::EmulatorError;
use crate::faults::{Fault, FaultError, FaultStatus};
use crate::pki::LocalCa;
use crate::ready::{self, ProfileInputs, ReadyInfo};
use crate::request_log::LoggedRequest;
use crate::routes::{self, Origin};
use crate::state::{Ring, Shared};
use crate::tokens::KubernetesTokenRequest;

mod builder;
mod files;
mod listener;
mod lock;
mod proxy;

pub use builder::{EmulatorBuilder, StartError};
use files::write_workload_token;

/// How long [`Emulator::shutdown`] lets requests in flight finish.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// A running emulator. Dropping it stops the listeners.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    https_addr: SocketAddr,
    http_addr: SocketAddr,
    service_fabric_addr: SocketAddr,
    service_fabric_thumbprint: String,
    /// The Resource Manager listener's address.
    arm_addr: SocketAddr,
    /// Transparent mode's proxy address.
    proxy_addr: SocketAddr,
    /// The transparent-mode CA certificate (trusted only by programs run in that mode).
    transparent_ca_path: PathBuf,
    /// Vault name (as seeded) → its listener's address.
    key_vault_addrs: std::collections::BTreeMap<String, SocketAddr>,
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_path: PathBuf,
    state_dir: PathBuf,
    shutdown: watch::Sender<bool>,
    connections: Arc<listener::Connections>,
    tasks: Vec<JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
    /// Held while the emulator runs; dropped after the temporary directory's handle.
    _lock: lock::StateLock,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Emulator {
    /// A builder with defaults: temporary state, the built-in seed, free ports, system clock.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// Starts an emulator with all defaults.
    ///
    /// # Errors
    /// See [`EmulatorBuilder::start`].
    pub async fn start() -> Result<Self, StartError> {
        Self::builder().start().await
    }

    /// The HTTPS base URL (the Entra authority host), e.g. `https://127.0.0.1:43123`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.https_addr)
    }

    /// The plain HTTP base URL (managed identity endpoints).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The Service Fabric listener's base URL (HTTPS with its own self-signed certificate).
    pub fn service_fabric_url(&self) -> String {
        format!("https://{}", self.service_fabric_addr)
    }

    /// The Resource Manager URL (`https://127.0.0.1:PORT`): `GET /tenants`, `/subscriptions`,
    /// `/metadata/endpoints`; `az cloud register --endpoint-resource-manager` takes it.
    pub fn arm_url(&self) -> String {
        format!("https://{}", self.arm_addr)
    }

    /// Transparent mode's proxy (`http://127.0.0.1:PORT`): `HTTPS_PROXY`/`HTTP_PROXY` for a
    /// program that should reach the emulator under Azure's own host names.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }

    /// The transparent-mode CA certificate (`STATE_DIR/transparent-ca.pem`): it may sign only
    /// for the Azure hosts transparent mode answers as. Trust it (with the main CA) in programs
    /// run through [`proxy_url`](Self::proxy_url).
    pub fn transparent_ca_path(&self) -> &Path {
        &self.transparent_ca_path
    }

    /// The CA bundle a program in transparent mode trusts (`STATE_DIR/transparent-bundle.pem`):
    /// the transparent-mode CA and the main CA.
    pub fn transparent_ca_bundle_path(&self) -> PathBuf {
        self.state_dir.join(builder::TRANSPARENT_BUNDLE)
    }

    /// The URL of the seeded Key Vault `name` (`https://127.0.0.1:PORT`, its own listener),
    /// as a secret client's vault URL. `None` for a vault the seed did not have at start.
    pub fn key_vault_url(&self, name: &str) -> Option<String> {
        self.key_vault_addrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, addr)| format!("https://{addr}"))
    }

    /// Every vault's URL, by name.
    pub fn key_vault_urls(&self) -> std::collections::BTreeMap<String, String> {
        self.key_vault_addrs
            .iter()
            .map(|(n, addr)| (n.clone(), format!("https://{addr}")))
            .collect()
    }

    /// The SHA-1 thumbprint (upper-case hex) of the Service Fabric listener's certificate, as
    /// `IDENTITY_SERVER_THUMBPRINT` carries it.
    pub fn service_fabric_thumbprint(&self) -> &str {
        &self.service_fabric_thumbprint
    }

    /// The HTTPS listener's address.
    pub fn https_addr(&self) -> SocketAddr {
        self.https_addr
    }

    /// The HTTP listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The CA certificate (PEM) that clients must trust.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Where the CA certificate is stored.
    pub fn ca_cert_path(&self) -> &Path {
        &self.ca_path
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The token endpoint of `tenant` (v2).
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.https_url())
    }

    /// What every client of the emulator has: timeouts, and, like azure_core's own transport,
    /// a redirect is an answer, not a hop.
    fn client_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
    }

    /// A reqwest client that trusts the emulator's CA (and nothing else), with timeouts.
    pub fn http_client(&self) -> reqwest::Client {
        let mut builder = Self::client_builder().no_proxy();
        match reqwest::Certificate::from_der(&self.ca_der) {
            Ok(cert) => builder = builder.tls_certs_only([cert]),
            Err(e) => tracing::error!(error = %e, "the emulator CA does not parse"),
        }
        builder.build().unwrap_or_default()
    }

    /// An HTTP client in transparent mode: every request goes through
    /// [`proxy_url`](Self::proxy_url) and trusts the transparent-mode CA (and the main one), so
    /// `https://login.microsoftonline.com`, `https://management.azure.com` and
    /// `https://{vault}.vault.azure.net` reach this emulator.
    pub fn transparent_http_client(&self) -> reqwest::Client {
        let mut builder = Self::client_builder();
        match reqwest::Proxy::all(self.proxy_url()) {
            Ok(proxy) => builder = builder.proxy(proxy),
            Err(e) => tracing::error!(error = %e, "the proxy URL does not parse"),
        }
        let bundle = std::fs::read(self.transparent_ca_bundle_path()).unwrap_or_default();
        match reqwest::Certificate::from_pem_bundle(&bundle) {
            Ok(certs) => builder = builder.tls_certs_only(certs),
            Err(e) => tracing::error!(error = %e, "the transparent CA bundle does not parse"),
        }
        builder.build().unwrap_or_default()
    }

    /// `azure_core` client options for transparent mode: Azure's public cloud (no authority
    /// override) over [`transparent_http_client`](Self::transparent_http_client).
    pub fn transparent_client_options(&self) -> azure_core::http::ClientOptions {
        azure_core::http::ClientOptions {
            transport: Some(azure_core::http::Transport::new(Arc::new(
                self.transparent_http_client(),
            ))),
            ..Default::default()
        }
    }

    /// `azure_core` client options whose authority is this emulator and whose transport trusts
    /// its CA: pass them to any credential's options and it talks to the emulator.
    pub fn client_options(&self) -> azure_core::http::ClientOptions {
        let mut custom = azure_core::cloud::CustomConfiguration::default();
        custom.authority_host = self.https_url();
        azure_core::http::ClientOptions {
            cloud: Some(Arc::new(azure_core::cloud::CloudConfiguration::from(
                custom,
            ))),
            transport: Some(azure_core::http::Transport::new(Arc::new(
                self.http_client(),
            ))),
            ..Default::default()
        }
    }

    /// The ready-file contents: URLs, CA path and the environment profile of every flow.
    pub fn ready_info(&self) -> ReadyInfo {
        let directory = self.shared.directory();
        let token_file = self.federated_token_path();
        let first_vault = directory
            .seed
            .key_vaults
            .first()
            .and_then(|v| self.key_vault_url(&v.name));
        let proxy_url = self.proxy_url();
        let transparent_bundle = self.transparent_ca_bundle_path();
        let inputs = ProfileInputs {
            https_url: &self.https_url(),
            http_url: &self.http_url(),
            service_fabric_url: &self.service_fabric_url(),
            service_fabric_thumbprint: &self.service_fabric_thumbprint,
            cli_config_dirs: self.cli_config_dirs(),
            ca_cert_path: &self.ca_path,
            directory: &directory,
            federated_token_file: token_file.exists().then_some(token_file.as_path()),
            now: self.shared.now(),
            key_vault_url: first_vault.as_deref(),
            transparent: Some((&proxy_url, &transparent_bundle)),
        };
        ReadyInfo {
            https_url: self.https_url(),
            http_url: self.http_url(),
            service_fabric_url: self.service_fabric_url(),
            service_fabric_thumbprint: self.service_fabric_thumbprint.clone(),
            ca_cert_path: self.ca_path.clone(),
            state_dir: self.state_dir.clone(),
            profiles: ready::profiles(&inputs),
            pid: Some(std::process::id()),
            key_vaults: self.key_vault_urls(),
            arm_url: Some(self.arm_url()),
            proxy_url: Some(proxy_url.clone()),
            transparent_ca_bundle_path: Some(transparent_bundle.clone()),
        }
    }

    /// Writes the ready file atomically.
    ///
    /// # Errors
    /// The I/O error.
    pub fn write_ready_file(&self, path: &Path) -> std::io::Result<()> {
        self.ready_info().write(path)
    }

    /// The workload identity token file the `workload_identity` profile points at.
    pub fn federated_token_path(&self) -> PathBuf {
        self.state_dir.join("tokens").join("kubernetes-token")
    }

    /// Config directories for the fake `az` and `azd`, signed in as the seed's first user
    /// (written at start): `(AZURE_CONFIG_DIR, AZD_CONFIG_DIR)`.
    pub fn cli_config_dirs(&self) -> (PathBuf, PathBuf) {
        (self.state_dir.join("azure-cli"), self.state_dir.join("azd"))
    }

    /// Re-mints the workload identity token file now.
    ///
    /// # Errors
    /// The I/O error.
    pub fn write_federated_token_file(&self) -> std::io::Result<()> {
        write_workload_token(&self.shared, &self.federated_token_path())
    }

    /// The requests received so far (oldest first), secrets redacted.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.snapshot()
    }

    /// Forgets the logged requests.
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// The configuration in force.
    pub fn effective_seed(&self) -> Seed {
        self.shared.directory().seed.clone()
    }

    /// Replaces the configuration.
    ///
    /// # Errors
    /// A description of what is invalid.
    pub fn apply_seed(&self, seed: Seed) -> Result<(), EmulatorError> {
        self.shared.apply_seed(seed)
    }

    /// Installs a fault (see [`crate::faults`]); returns its id. Faults fire in the order they
    /// were added; the first that matches a request wins.
    ///
    /// # Errors
    /// When the fault's values make no sense (a probability outside 0..=1, a non-HTTP status).
    pub fn add_fault(&self, fault: Fault) -> Result<u64, FaultError> {
        self.shared.faults.add(fault)
    }

    /// The faults in effect, with how often each has fired and may still fire.
    pub fn faults(&self) -> Vec<FaultStatus> {
        self.shared.faults.list()
    }

    /// Removes the fault `id`; false when there is none.
    pub fn remove_fault(&self, id: u64) -> bool {
        self.shared.faults.remove(id)
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Back to the starting seed; clears the request log and the clock offset.
    ///
    /// # Errors
    /// A description of what failed.
    pub fn reset(&self) -> Result<(), EmulatorError> {
        self.shared.reset()
    }

    /// Adds a tenant.
    ///
    /// # Errors
    /// A description of what is invalid.
    pub fn add_tenant(&self, tenant: Tenant) -> Result<(), EmulatorError> {
        self.shared.add_tenant(tenant)
    }

    /// Adds an application.
    ///
    /// # Errors
    /// A description of what is invalid.
    pub fn add_application(&self, app: Application) -> Result<(), EmulatorError> {
        self.shared.add_application(app)
    }

    /// Adds a client secret to the application `client_id`.
    ///
    /// # Errors
    /// When no application has that id.
    pub fn add_secret(&self, client_id: &str, secret: ClientSecret) -> Result<(), EmulatorError> {
        self.shared.add_secret(client_id, secret)
    }

    /// Adds a certificate to the application `client_id`.
    ///
    /// # Errors
    /// When no application has that id, or the certificate is unusable.
    pub fn add_certificate(
        &self,
        client_id: &str,
        cert: CertificateSpec,
    ) -> Result<(), EmulatorError> {
        self.shared.add_certificate(client_id, cert)
    }

    /// Adds a federated identity credential to the application `client_id`.
    ///
    /// # Errors
    /// When no application has that id.
    pub fn add_federated_credential(
        &self,
        client_id: &str,
        fic: FederatedCredential,
    ) -> Result<(), EmulatorError> {
        self.shared.add_federated_credential(client_id, fic)
    }

    /// Mints a Kubernetes service-account token from the emulator's Kubernetes issuer.
    pub fn mint_kubernetes_token(&self, request: &KubernetesTokenRequest) -> String {
        self.shared.mint_kubernetes_token(request)
    }

    /// Shifts the emulator's clock by `secs` (tokens, assertion checks and expiry use it).
    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.set_clock_offset(secs);
    }

    /// Rotates the access-token signing key. The previous key stays in JWKS for
    /// `settings.key_grace_secs`. Returns the new key id.
    ///
    /// # Errors
    /// When the new key cannot be generated or persisted.
    pub fn rotate_signing_key(&self) -> Result<String, EmulatorError> {
        self.shared.rotate(Ring::Tokens)
    }

    /// Approves the pending device code `user_code` for `user` (UPN or object id), as the user
    /// would on the device login page: the polling client gets its tokens.
    ///
    /// # Errors
    /// No such user; the code is unknown, expired or already decided; or the user cannot
    /// sign in to the code's tenant.
    pub fn approve_device_code(&self, user_code: &str, user: &str) -> Result<(), EmulatorError> {
        let directory = self.shared.directory();
        let user = directory
            .user(user)
            .ok_or_else(|| EmulatorError::UserNotFound(user.to_string()))?;
        let now = self.shared.now().unix_timestamp();
        routes::sign_in::approve_device_code(&self.shared, &directory, user_code, user, now)
            .map_err(|e| EmulatorError::DeviceCode(e.to_string()))
    }

    /// Declines the pending device code `user_code`: the polling client gets
    /// `authorization_declined`.
    ///
    /// # Errors
    /// The code is unknown, expired or already decided.
    pub fn decline_device_code(&self, user_code: &str) -> Result<(), EmulatorError> {
        let now = self.shared.now().unix_timestamp();
        self.shared
            .sign_in
            .decide(user_code, None, now)
            .map_err(|e| EmulatorError::DeviceCode(routes::sign_in::device_error(e).to_string()))
    }

    /// The user codes of the device codes waiting for a user, oldest first.
    pub fn pending_device_codes(&self) -> Vec<String> {
        let now = self.shared.now().unix_timestamp();
        self.shared
            .sign_in
            .pending_device_codes(now)
            .into_iter()
            .map(|d| d.user_code)
            .collect()
    }

    /// Revokes a principal for continuous access evaluation, as
    /// `POST /_emulator/revoke` does: resources refuse its CAE tokens issued up to now with a
    /// claims challenge (tokens issued later work); a user's sessions and refresh tokens end
    /// too. `subject` is a user's UPN or object id, or an application's or managed identity's
    /// client id or object id. Returns the revocation time (Unix seconds).
    ///
    /// # Errors
    /// No such principal.
    pub fn revoke(&self, subject: &str) -> Result<i64, EmulatorError> {
        routes::resource_control::revoke_subject(&self.shared, subject)
            .map(|r| r.at)
            .ok_or_else(|| EmulatorError::PrincipalNotFound(subject.to_string()))
    }

    /// Revokes every session and refresh token of `user` (UPN or object id): refresh grants
    /// then fail with AADSTS50173 and browser sessions end.
    ///
    /// # Errors
    /// No such user.
    pub fn revoke_sessions(&self, user: &str) -> Result<(), EmulatorError> {
        let directory = self.shared.directory();
        let user = directory
            .user(user)
            .ok_or_else(|| EmulatorError::UserNotFound(user.to_string()))?;
        let now = self.shared.now().unix_timestamp();
        self.shared.sign_in.revoke(&user.object_id, now);
        Ok(())
    }

    /// The paths of a generated application certificate: (PEM with key, PKCS#12).
    pub fn generated_certificate_paths(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        let directory = self.shared.directory();
        let cert = directory.generated_certificate(name)?;
        Some((cert.pem_path.clone(), cert.pfx_path.clone()))
    }

    /// Stops gracefully, letting requests in flight finish for up to [`DEFAULT_DRAIN`].
    pub async fn shutdown(self) {
        self.shutdown_within(DEFAULT_DRAIN).await;
    }

    /// Stops gracefully: stops accepting, lets requests in flight finish for up to `deadline`,
    /// then closes what is left. Returns how many connections had to be cut.
    pub async fn shutdown_within(mut self, deadline: Duration) -> usize {
        let _ = self.shutdown.send(true);
        let cut = self.connections.drain(deadline).await;
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
        cut
    }
}
