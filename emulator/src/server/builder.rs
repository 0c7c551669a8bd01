//! Building and starting an [`Emulator`]: the state directory, the CA, the listeners.

use super::files::refresh_token_file;
use super::listener::serve;
use super::lock::{LockError, StateLock};
use super::*;
use crate::pki::CaKind;
use std::collections::BTreeMap;

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
    /// Another emulator holds the state directory.
    #[error(
        "the state directory {} is in use by {}: pass another --state-dir (or stop that emulator)",
        path.display(),
        pid.map_or_else(|| "another emulator".to_string(), |p| format!("PID {p}"))
    )]
    InUse {
        /// The state directory.
        path: PathBuf,
        /// The holder's process id, when its lock file says.
        pid: Option<u32>,
    },
    /// Listening beyond loopback without a control token.
    #[error(
        "refusing to listen on {addr} without a control token: anyone who can reach it could replace the seed and mint tokens; pass --control-token (or ENTRA_EMULATOR_CONTROL_TOKEN), or bind 127.0.0.1"
    )]
    Unprotected {
        /// The address asked for.
        addr: IpAddr,
    },
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
    arm_port: u16,
    proxy_port: u16,
    bind: IpAddr,
    control_token: Option<String>,
    idle_timeout: Option<Duration>,
    max_connections: Option<usize>,
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
            arm_port: 0,
            proxy_port: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            control_token: None,
            idle_timeout: None,
            max_connections: None,
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

    /// The Resource Manager listener's port (0, the default, picks a free port).
    pub fn arm_port(mut self, port: u16) -> Self {
        self.arm_port = port;
        self
    }

    /// The transparent-mode proxy port (plain HTTP, `CONNECT` for Azure's hosts); 0, the
    /// default, picks a free one.
    pub fn proxy_port(mut self, port: u16) -> Self {
        self.proxy_port = port;
        self
    }

    /// The address to listen on. Default: `127.0.0.1`. Anything but a loopback address needs
    /// a [control token](Self::control_token): the control plane can replace the seed and
    /// mint tokens.
    pub fn bind(mut self, address: IpAddr) -> Self {
        self.bind = address;
        self
    }

    /// A token every control-plane call must present as `Authorization: Bearer <token>`.
    /// Optional on loopback, required beyond it.
    pub fn control_token(mut self, token: impl Into<String>) -> Self {
        self.control_token = Some(token.into()).filter(|t: &String| !t.is_empty());
        self
    }

    /// How long an HTTP/1 connection may wait for a complete request head before it is closed
    /// (slow clients, and idle keep-alive connections). Default: 30 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// The most connections served at once; more wait in the listen backlog. Default: the
    /// open-files limit (raised to its hard limit at start) less 64.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = Some(max.max(1));
        self
    }

    /// The clock. Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The connection limits: this process's, with the builder's overrides.
    fn limits(&self) -> super::listener::ConnectionLimits {
        let mut limits = super::listener::ConnectionLimits::for_this_process();
        if let Some(idle) = self.idle_timeout {
            limits.idle_timeout = idle;
        }
        if let Some(max) = self.max_connections {
            limits.max_connections = max;
        }
        limits
    }

    /// Loads state, binds both listeners on 127.0.0.1 and starts serving.
    ///
    /// # Errors
    /// [`StartError`] when the state directory, the seed or a port is unusable.
    pub async fn start(self) -> Result<Emulator, StartError> {
        if !self.bind.is_loopback() && self.control_token.is_none() {
            return Err(StartError::Unprotected { addr: self.bind });
        }
        let limits = self.limits();
        let (temp, state_dir, lock) = open_state_dir(self.state_dir)?;
        let state_err = |e: &dyn std::fmt::Display| StartError::State {
            path: state_dir.clone(),
            message: e.to_string(),
        };
        let seed = self.seed.unwrap_or_else(Seed::default_seed);
        seed.validate()?;
        let ca = LocalCa::load_or_create(&state_dir).map_err(|e| state_err(&e))?;
        let tls = ca.server_config().map_err(|e| state_err(&e))?;
        let mut shared = Shared::new(&state_dir, seed, self.clock).map_err(|e| state_err(&e))?;
        shared.control_token = self.control_token;
        let shared = Arc::new(shared);
        let (sf_tls, sf_thumbprint) =
            crate::pki::service_fabric_tls(&state_dir).map_err(|e| state_err(&e))?;
        write_service_fabric_bundle(&state_dir, &ca).map_err(|e| state_err(&e))?;
        let (service_fabric, service_fabric_addr) =
            bind(self.bind, self.service_fabric_port).await?;
        let (https, https_addr) = bind(self.bind, self.https_port).await?;
        let (http, http_addr) = bind(self.bind, self.http_port).await?;
        let (key_vaults, key_vault_addrs) = bind_key_vaults(self.bind, &shared).await?;
        let (arm, arm_addr) = bind(self.bind, self.arm_port).await?;
        let (proxy, proxy_addr) = bind(self.bind, self.proxy_port).await?;
        let transparent_ca = LocalCa::load_or_create_kind(&state_dir, CaKind::Transparent)
            .map_err(|e| state_err(&e))?;
        let transparent_ca_path = transparent_ca.path().to_path_buf();
        // What a program in transparent mode trusts: Azure's names from the transparent CA,
        // the loopback listeners (e.g. the device-code page) from the main one.
        let bundle = format!("{}{}", transparent_ca.cert_pem(), ca.cert_pem());
        crate::pki::write_atomic(
            &state_dir.join(TRANSPARENT_BUNDLE),
            bundle.as_bytes(),
            false,
        )
        .map_err(|e| state_err(&e))?;
        let _ = shared.arm_url.set(format!("https://{arm_addr}"));
        let _ = shared.https_origin.set(format!("https://{https_addr}"));

        let (shutdown, signal) = watch::channel(false);
        let listeners = Listeners {
            https: (https, tls),
            http,
            service_fabric: (service_fabric, sf_tls),
            key_vaults,
            arm,
            proxy: (proxy, transparent_ca),
        };
        let connections = super::listener::Connections::new(limits);
        let mut tasks = listeners.serve(&shared, &signal, &connections);
        let mut emulator = Emulator {
            shared,
            https_addr,
            http_addr,
            service_fabric_addr,
            service_fabric_thumbprint: sf_thumbprint,
            key_vault_addrs,
            arm_addr,
            proxy_addr,
            transparent_ca_path,
            ca_pem: ca.cert_pem().to_string(),
            ca_der: ca.cert_der().to_vec(),
            ca_path: ca.path().to_path_buf(),
            state_dir: state_dir.clone(),
            shutdown,
            connections,
            tasks: Vec::new(),
            _temp: temp,
            _lock: lock,
        };
        emulator
            .write_files_and_refresh(&mut tasks, signal)
            .map_err(|e| state_err(&e))?;
        emulator.tasks = tasks;
        Ok(emulator)
    }
}

impl Emulator {
    /// Writes the workload token file and the CLI profiles, and keeps the token file fresh.
    fn write_files_and_refresh(
        &self,
        tasks: &mut Vec<JoinHandle<()>>,
        signal: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        self.write_federated_token_file()?;
        self.write_cli_profiles()?;
        tasks.push(tokio::spawn(refresh_token_file(
            self.shared.clone(),
            self.federated_token_path(),
            signal,
        )));
        Ok(())
    }
}

/// The CA bundle transparent mode's clients trust, in the state directory.
pub(super) const TRANSPARENT_BUNDLE: &str = "transparent-bundle.pem";

/// The listeners, bound, with their TLS configurations.
struct Listeners {
    https: (TcpListener, Arc<rustls::ServerConfig>),
    http: TcpListener,
    service_fabric: (TcpListener, Arc<rustls::ServerConfig>),
    /// One HTTPS listener per seeded Key Vault (the main listener's certificate).
    key_vaults: Vec<(String, TcpListener)>,
    /// Resource Manager (HTTPS, the main listener's certificate).
    arm: TcpListener,
    /// Transparent mode's proxy (plain HTTP), and the CA it issues Azure host certificates from.
    proxy: (TcpListener, LocalCa),
}

impl Listeners {
    /// Serves each listener on its own task until `signal` says stop.
    fn serve(
        self,
        shared: &Arc<Shared>,
        signal: &watch::Receiver<bool>,
        connections: &Arc<super::listener::Connections>,
    ) -> Vec<JoinHandle<()>> {
        let app = |scheme| {
            let origin = Origin {
                scheme,
                service_fabric: false,
            };
            routes::app(shared.clone(), origin)
        };
        let (https, tls) = self.https;
        let (service_fabric, sf_tls) = self.service_fabric;
        let vault_apps: Vec<(String, axum::Router)> = self
            .key_vaults
            .iter()
            .map(|(name, _)| (name.clone(), routes::key_vault::app(shared.clone(), name)))
            .collect();
        let (proxy_listener, transparent_ca) = self.proxy;
        let proxy = super::proxy::Proxy::new(
            app("https"),
            app("http"),
            routes::arm::app(shared.clone()),
            vault_apps.iter().cloned().collect(),
            transparent_ca,
        );
        let vaults =
            self.key_vaults
                .into_iter()
                .zip(vault_apps)
                .map(|((_, listener), (_, vault))| {
                    tokio::spawn(serve(
                        listener,
                        Some(TlsAcceptor::from(tls.clone())),
                        vault,
                        signal.clone(),
                        connections.clone(),
                    ))
                });
        let mut tasks: Vec<JoinHandle<()>> = vaults.collect();
        tasks.push(tokio::spawn(serve(
            proxy_listener,
            None,
            super::listener::Handler::Proxy(Arc::new(proxy)),
            signal.clone(),
            connections.clone(),
        )));
        tasks.push(tokio::spawn(serve(
            self.arm,
            Some(TlsAcceptor::from(tls.clone())),
            routes::arm::app(shared.clone()),
            signal.clone(),
            connections.clone(),
        )));
        tasks.extend([
            tokio::spawn(serve(
                https,
                Some(TlsAcceptor::from(tls)),
                app("https"),
                signal.clone(),
                connections.clone(),
            )),
            tokio::spawn(serve(
                self.http,
                None,
                app("http"),
                signal.clone(),
                connections.clone(),
            )),
            tokio::spawn(serve(
                service_fabric,
                Some(TlsAcceptor::from(sf_tls)),
                routes::service_fabric_app(shared.clone()),
                signal.clone(),
                connections.clone(),
            )),
        ]);
        tasks
    }
}

/// The state directory to use, created: the one given, or a temporary one removed on drop.
fn open_state_dir(
    dir: Option<PathBuf>,
) -> Result<(Option<tempfile::TempDir>, PathBuf, StateLock), StartError> {
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
    create_private_dir(&path).map_err(|e| StartError::State {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let lock = StateLock::acquire(&path).map_err(|e| match e {
        LockError::InUse { path, pid } => StartError::InUse { path, pid },
        LockError::Io(e) => StartError::State {
            path: path.clone(),
            message: format!("cannot take the state directory's lock file: {e}"),
        },
    })?;
    Ok((temp, path, lock))
}

/// Creates `dir` (and missing parents) readable by the owner only; an existing directory keeps
/// its permissions.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
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

/// One listener (a free port) per seeded Key Vault; the vaults' URLs go into the shared state.
async fn bind_key_vaults(
    ip: IpAddr,
    shared: &Shared,
) -> Result<(Vec<(String, TcpListener)>, BTreeMap<String, SocketAddr>), StartError> {
    let mut listeners = Vec::new();
    let mut addrs = BTreeMap::new();
    for vault in &shared.directory().seed.key_vaults {
        let (listener, addr) = bind(ip, 0).await?;
        listeners.push((vault.name.clone(), listener));
        addrs.insert(vault.name.clone(), addr);
    }
    let urls = addrs
        .iter()
        .map(|(name, addr)| (name.clone(), format!("https://{addr}")))
        .collect();
    let _ = shared.key_vault_urls.set(urls);
    Ok((listeners, addrs))
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
