//! Starting and stopping the emulator: the builder, the running handle, and the two listeners.

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

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the workload identity token file is re-minted. Kubernetes rotates projected
/// tokens at 80 % of their one-hour lifetime; ten minutes keeps the file comfortably valid.
const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(600);

/// An error starting the emulator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The state directory or key material could not be read or written.
    #[error("state directory {path}: {message}")]
    State {
        /// The state directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The seed is invalid.
    #[error(transparent)]
    Seed(#[from] crate::config::SeedError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Builds an [`Emulator`].
#[derive(Debug)]
pub struct EmulatorBuilder {
    state_dir: Option<PathBuf>,
    seed: Option<Seed>,
    https_port: u16,
    http_port: u16,
    service_fabric_port: u16,
    bind: IpAddr,
    clock: Arc<dyn Clock>,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            state_dir: None,
            seed: None,
            https_port: 0,
            http_port: 0,
            service_fabric_port: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            clock: Arc::new(SystemClock),
        }
    }
}

impl EmulatorBuilder {
    /// Where the CA, keys and generated certificates persist. Default: a temporary directory
    /// removed when the emulator is dropped.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// The seed. Default: [`Seed::default_seed`].
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The HTTPS port (0, the default, picks a free port).
    pub fn https_port(mut self, port: u16) -> Self {
        self.https_port = port;
        self
    }

    /// The HTTP port (0, the default, picks a free port).
    pub fn http_port(mut self, port: u16) -> Self {
        self.http_port = port;
        self
    }

    /// The Service Fabric listener's port (0, the default, picks a free port).
    pub fn service_fabric_port(mut self, port: u16) -> Self {
        self.service_fabric_port = port;
        self
    }

    /// The clock. Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Loads state, binds both listeners on 127.0.0.1 and starts serving.
    ///
    /// # Errors
    /// [`StartError`] when the state directory, the seed or a port is unusable.
    pub async fn start(self) -> Result<Emulator, StartError> {
        let (temp, state_dir) = open_state_dir(self.state_dir)?;
        let state_err = |e: &dyn std::fmt::Display| StartError::State {
            path: state_dir.clone(),
            message: e.to_string(),
        };
        let seed = self.seed.unwrap_or_else(Seed::default_seed);
        seed.validate()?;
        let ca = LocalCa::load_or_create(&state_dir).map_err(|e| state_err(&e))?;
        let tls = ca.server_config().map_err(|e| state_err(&e))?;
        let shared =
            Arc::new(Shared::new(&state_dir, seed, self.clock).map_err(|e| state_err(&e))?);
        let (sf_tls, sf_thumbprint) =
            crate::pki::service_fabric_tls(&state_dir).map_err(|e| state_err(&e))?;
        write_service_fabric_bundle(&state_dir, &ca).map_err(|e| state_err(&e))?;
        let (service_fabric, service_fabric_addr) =
            bind(self.bind, self.service_fabric_port).await?;
        let (https, https_addr) = bind(self.bind, self.https_port).await?;
        let (http, http_addr) = bind(self.bind, self.http_port).await?;
        let _ = shared.https_origin.set(format!("https://{https_addr}"));
        let (shutdown, signal) = watch::channel(false);
        let listeners = Listeners {
            https: (https, tls),
            http,
            service_fabric: (service_fabric, sf_tls),
        };
        let mut tasks = listeners.serve(&shared, &signal);
        let mut emulator = Emulator {
            shared,
            https_addr,
            http_addr,
            service_fabric_addr,
            service_fabric_thumbprint: sf_thumbprint,
            ca_pem: ca.cert_pem().to_string(),
            ca_der: ca.cert_der().to_vec(),
            ca_path: ca.path().to_path_buf(),
            state_dir: state_dir.clone(),
            shutdown,
            tasks: Vec::new(),
            _temp: temp,
        };
        emulator
            .write_federated_token_file()
            .map_err(|e| state_err(&e))?;
        emulator.write_cli_profiles().map_err(|e| state_err(&e))?;
        let token_file = emulator.federated_token_path();
        tasks.push(tokio::spawn(refresh_token_file(
            emulator.shared.clone(),
            token_file,
            signal,
        )));
        emulator.tasks = tasks;
        Ok(emulator)
    }
}

/// The three listeners, bound, with their TLS configurations.
struct Listeners {
    https: (TcpListener, Arc<rustls::ServerConfig>),
    http: TcpListener,
    service_fabric: (TcpListener, Arc<rustls::ServerConfig>),
}

impl Listeners {
    /// Serves each listener on its own task until `signal` says stop.
    fn serve(self, shared: &Arc<Shared>, signal: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let app = |scheme| {
            let origin = Origin {
                scheme,
                service_fabric: false,
            };
            routes::app(shared.clone(), origin)
        };
        let (https, tls) = self.https;
        let (service_fabric, sf_tls) = self.service_fabric;
        vec![
            tokio::spawn(serve(
                https,
                Some(TlsAcceptor::from(tls)),
                app("https"),
                signal.clone(),
            )),
            tokio::spawn(serve(self.http, None, app("http"), signal.clone())),
            tokio::spawn(serve(
                service_fabric,
                Some(TlsAcceptor::from(sf_tls)),
                routes::service_fabric_app(shared.clone()),
                signal.clone(),
            )),
        ]
    }
}

/// The state directory to use, created: the one given, or a temporary one removed on drop.
fn open_state_dir(
    dir: Option<PathBuf>,
) -> Result<(Option<tempfile::TempDir>, PathBuf), StartError> {
    let (temp, path) = match dir {
        Some(dir) => (None, dir),
        None => {
            let temp = tempfile::tempdir().map_err(|e| StartError::State {
                path: std::env::temp_dir(),
                message: e.to_string(),
            })?;
            let path = temp.path().to_path_buf();
            (Some(temp), path)
        }
    };
    std::fs::create_dir_all(&path).map_err(|e| StartError::State {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok((temp, path))
}

/// Clients that verify the Service Fabric certificate against their trust store (the JS SDK)
/// get a bundle of the CA and that self-signed certificate.
fn write_service_fabric_bundle(state_dir: &Path, ca: &LocalCa) -> std::io::Result<()> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let pem = std::fs::read(state_dir.join("service-fabric.pem"))?;
    let mut bundle = ca.cert_pem().to_string();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(std::io::Error::other)?;
        bundle.push_str(&crate::pki::certificate_pem(&cert));
    }
    crate::pki::write_atomic(
        &state_dir.join("service-fabric-bundle.pem"),
        bundle.as_bytes(),
        false,
    )
}

/// Binds `ip:port` (port 0: any free port); returns the listener and its address.
async fn bind(ip: IpAddr, port: u16) -> Result<(TcpListener, SocketAddr), StartError> {
    let addr = SocketAddr::new(ip, port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Accepts connections until shutdown; each connection is served on its own task.
async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            // Accept errors (e.g. too many open files) are transient; back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    serve_connection(TokioIo::new(stream), app, shutdown).await;
                }
                None => serve_connection(TokioIo::new(stream), app, shutdown).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, app: axum::Router, mut shutdown: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            let Ok(response) = app.oneshot(request.map(axum::body::Body::new)).await;
            if response
                .extensions()
                .get::<crate::routes::inject::DropConnection>()
                .is_some()
            {
                // A `hang` or `reset` fault: close the connection without a response.
                return Err(ConnectionDropped);
            }
            Ok(response)
        }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(io, service);
    tokio::select! {
        _ = connection => {}
        _ = shutdown.changed() => {}
    }
}

/// The error that makes hyper close a connection without answering (a fault).
#[derive(Debug)]
struct ConnectionDropped;

impl std::fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for ConnectionDropped {}

async fn refresh_token_file(
    shared: Arc<Shared>,
    path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TOKEN_FILE_REFRESH) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = write_workload_token(&shared, &path) {
            tracing::warn!(error = %e, "could not refresh the federated token file");
        }
    }
}

fn write_workload_token(shared: &Shared, path: &Path) -> std::io::Result<()> {
    let seed = shared.directory().seed.clone();
    let Some(request) = ready::workload_subject(&seed)
        .as_deref()
        .and_then(KubernetesTokenRequest::from_subject)
    else {
        return Ok(());
    };
    let token = shared.mint_kubernetes_token(&request);
    crate::pki::write_atomic(path, token.as_bytes(), true)
}

/// A running emulator. Dropping it stops the listeners.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    https_addr: SocketAddr,
    http_addr: SocketAddr,
    service_fabric_addr: SocketAddr,
    service_fabric_thumbprint: String,
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_path: PathBuf,
    state_dir: PathBuf,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
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

    /// A reqwest client that trusts the emulator's CA (and nothing else), with timeouts.
    pub fn http_client(&self) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            // Like azure_core's own transport: a redirect is an answer, not a hop.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        match reqwest::Certificate::from_der(&self.ca_der) {
            Ok(cert) => builder = builder.tls_certs_only([cert]),
            Err(e) => tracing::error!(error = %e, "the emulator CA does not parse"),
        }
        builder.build().unwrap_or_default()
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
        };
        ReadyInfo {
            https_url: self.https_url(),
            http_url: self.http_url(),
            service_fabric_url: self.service_fabric_url(),
            service_fabric_thumbprint: self.service_fabric_thumbprint.clone(),
            ca_cert_path: self.ca_path.clone(),
            state_dir: self.state_dir.clone(),
            profiles: ready::profiles(&inputs),
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

    /// Writes the fake CLIs' signed-in profile (the `fake-cli` crate's documented format) into
    /// both config directories.
    fn write_cli_profiles(&self) -> std::io::Result<()> {
        let directory = self.shared.directory();
        let Some(user) = directory.seed.users.first() else {
            return Ok(());
        };
        let now = self.shared.now().unix_timestamp();
        let refresh_token = crate::grants::user::mint_refresh_token(
            &self.shared,
            user,
            crate::tokens::AZURE_CLI_CLIENT_ID,
            now,
        );
        let profile = Profile {
            endpoint: CliEndpoint {
                authority: self.https_url(),
                ca_cert_path: Some(self.ca_path.clone()),
            },
            tenant: user.tenant.clone(),
            subscription: crate::config::well_known::SUBSCRIPTION_ID.to_string(),
            account: Account::User {
                username: user.user_principal_name.clone(),
                refresh_token,
            },
        };
        let (az, azd) = self.cli_config_dirs();
        for dir in [az, azd] {
            profile.save(&dir)?;
        }
        Ok(())
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

    /// The paths of a generated application certificate: (PEM with key, PKCS#12).
    pub fn generated_certificate_paths(&self, name: &str) -> Option<(PathBuf, PathBuf)> {
        let directory = self.shared.directory();
        let cert = directory.generated_certificate(name)?;
        Some((cert.pem_path.clone(), cert.pfx_path.clone()))
    }

    /// Stops the listeners and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
    }
}
