//! Transparent mode: the emulator as an HTTP proxy that answers for Azure's own host names, so
//! an unmodified program with only `HTTPS_PROXY`/`HTTP_PROXY` and trust in the transparent-mode
//! CA talks to the emulator as if it were Azure (no authority override, no instance-discovery
//! switch, the SDKs' challenge-resource checks satisfied).
//!
//! - `CONNECT host:443` for an Entra authority (`login.microsoftonline.com`,
//!   `login.microsoft.com`, `login.windows.net`, `sts.windows.net`), Resource Manager
//!   (`management.azure.com`, `management.core.windows.net`) or a seeded Key Vault
//!   (`{name}.vault.azure.net`): the tunnel is answered here, with TLS under a certificate for
//!   that name issued on the fly by the transparent-mode CA (`transparent-ca.pem`, whose name
//!   constraints permit only those names).
//! - Absolute-form plain HTTP to IMDS (`http://169.254.169.254/…`): served by the managed
//!   identity routes. The request never leaves the machine.
//! - Anything else is refused with a 403 that names the host; nothing is ever forwarded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::pki::LocalCa;
use crate::routes::Transparent;

/// Entra's public authorities that transparent mode answers as.
const AUTHORITIES: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoft.com",
    "login.windows.net",
    "sts.windows.net",
];
const RESOURCE_MANAGER: &[&str] = &["management.azure.com", "management.core.windows.net"];
const VAULT_SUFFIX: &str = ".vault.azure.net";
const IMDS: &str = "169.254.169.254";
/// At most this many host certificates are kept (one per vault and authority in practice).
const MAX_CERTIFICATES: usize = 256;

/// What the proxy serves each host with.
pub(crate) struct Proxy {
    entra: Router,
    imds: Router,
    arm: Router,
    vaults: HashMap<String, Router>,
    ca: LocalCa,
    certificates: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("vaults", &self.vaults.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a host is not answered: the 403's text.
fn refusal(host: &str) -> String {
    format!(
        "The Entra emulator's transparent mode answers only for Azure's hosts ({}, {}, \
         {{vault}}{VAULT_SUFFIX} for a seeded vault, and http://{IMDS}); it never forwards \
         requests, so '{host}' is not reachable through it. Exclude that host with NO_PROXY.",
        AUTHORITIES.join(", "),
        RESOURCE_MANAGER.join(", "),
    )
}

impl Proxy {
    /// A proxy serving the given routers, issuing certificates from `ca`.
    pub(crate) fn new(
        entra: Router,
        imds: Router,
        arm: Router,
        vaults: HashMap<String, Router>,
        ca: LocalCa,
    ) -> Self {
        let vaults = vaults
            .into_iter()
            .map(|(name, router)| (name.to_ascii_lowercase(), router))
            .collect();
        Self {
            entra,
            imds,
            arm,
            vaults,
            ca,
            certificates: Mutex::default(),
        }
    }

    /// The router for an HTTPS tunnel to `host`, or why there is none.
    fn tls_target(&self, host: &str) -> Result<&Router, String> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if AUTHORITIES.contains(&host.as_str()) {
            return Ok(&self.entra);
        }
        if RESOURCE_MANAGER.contains(&host.as_str()) {
            return Ok(&self.arm);
        }
        if let Some(name) = host.strip_suffix(VAULT_SUFFIX) {
            return self.vaults.get(name).ok_or_else(|| {
                format!(
                    "No Key Vault named '{name}' is seeded in the Entra emulator (seeded: {}). \
                     Add it under [[key_vaults]] in the seed.",
                    {
                        let mut names: Vec<&str> = self.vaults.keys().map(String::as_str).collect();
                        names.sort_unstable();
                        names.join(", ")
                    }
                )
            });
        }
        Err(refusal(&host))
    }

    /// The TLS configuration for `host`: a certificate issued once, then kept.
    fn tls_config(&self, host: &str) -> std::io::Result<Arc<rustls::ServerConfig>> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let mut certificates = self.certificates.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(config) = certificates.get(&host) {
            return Ok(config.clone());
        }
        let config = self.ca.server_config_for_host(&host)?;
        if certificates.len() >= MAX_CERTIFICATES {
            certificates.clear();
        }
        certificates.insert(host, config.clone());
        Ok(config)
    }
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    tracing::warn!(status = status.as_u16(), %message, "transparent mode refused a request");
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// One client connection to the proxy port: HTTP/1.1, with `CONNECT` upgrades.
pub(super) async fn serve_client(
    stream: tokio::net::TcpStream,
    proxy: Arc<Proxy>,
    shutdown: watch::Receiver<bool>,
    force: watch::Receiver<bool>,
    idle_timeout: std::time::Duration,
) {
    let (shutdown_rx, force_rx) = (shutdown.clone(), force.clone());
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let proxy = proxy.clone();
        let (shutdown, force) = (shutdown.clone(), force.clone());
        async move {
            Ok::<_, std::convert::Infallible>(
                handle(request, proxy, shutdown, force, idle_timeout).await,
            )
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    // As the other listeners (tunnels carry on under their own connection's rules).
    super::listener::drain(connection, |c| c.graceful_shutdown(), shutdown_rx, force_rx).await;
}

async fn handle(
    request: Request<Incoming>,
    proxy: Arc<Proxy>,
    shutdown: watch::Receiver<bool>,
    force: watch::Receiver<bool>,
    idle_timeout: std::time::Duration,
) -> Response<Body> {
    let authority = request.uri().authority().cloned();
    if request.method() == Method::CONNECT {
        let Some(authority) = authority else {
            return text(StatusCode::BAD_REQUEST, "CONNECT needs host:port".into());
        };
        let host = authority.host().to_string();
        if authority.port_u16().unwrap_or(443) != 443 {
            return text(
                StatusCode::FORBIDDEN,
                format!("transparent mode answers HTTPS on port 443 only, not {authority}"),
            );
        }
        let router = match proxy.tls_target(&host) {
            Ok(router) => router.clone().layer(axum::Extension(Transparent)),
            Err(why) => return text(StatusCode::FORBIDDEN, why),
        };
        let config = match proxy.tls_config(&host) {
            Ok(config) => config,
            Err(e) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot issue a certificate for {host}: {e}"),
                );
            }
        };
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(request).await else {
                return;
            };
            let accept = TlsAcceptor::from(config).accept(TokioIo::new(upgraded));
            let Ok(Ok(tls)) =
                tokio::time::timeout(super::listener::HANDSHAKE_TIMEOUT, accept).await
            else {
                return;
            };
            let limits = super::listener::ConnLimits {
                idle_timeout,
                h2: tls.get_ref().1.alpn_protocol() == Some(b"h2"),
            };
            super::listener::serve_connection(TokioIo::new(tls), router, shutdown, force, limits)
                .await;
        });
        return Response::new(Body::empty());
    }
    match authority {
        // Absolute-form: a plain-HTTP request through the proxy. Only IMDS is plain HTTP.
        Some(authority) if authority.host() == IMDS => {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(Transparent);
            let Ok(response) = proxy.imds.clone().oneshot(request).await;
            response
        }
        Some(authority) if proxy.tls_target(authority.host()).is_ok() => text(
            StatusCode::FORBIDDEN,
            format!(
                "{} is HTTPS only: send https:// URLs (the proxy tunnels them)",
                authority.host()
            ),
        ),
        Some(authority) => text(StatusCode::FORBIDDEN, refusal(authority.host())),
        None => text(
            StatusCode::BAD_REQUEST,
            "This is the Entra emulator's transparent proxy, not a web server: set HTTPS_PROXY \
             and HTTP_PROXY to its address (the ready file's `transparent` profile does)."
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy() -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create_kind(dir.path(), crate::pki::CaKind::Transparent).unwrap();
        let vaults = HashMap::from([("Emulator-Vault".to_string(), Router::new())]);
        Proxy::new(Router::new(), Router::new(), Router::new(), vaults, ca)
    }

    #[test]
    fn only_azure_hosts_and_seeded_vaults_are_answered() {
        let proxy = proxy();
        for host in [
            "login.microsoftonline.com",
            "LOGIN.microsoftonline.com.",
            "sts.windows.net",
            "management.azure.com",
            "emulator-vault.vault.azure.net",
        ] {
            assert!(proxy.tls_target(host).is_ok(), "{host}");
        }
        let unseeded = proxy.tls_target("other.vault.azure.net").unwrap_err();
        assert!(
            unseeded.contains("No Key Vault named 'other'") && unseeded.contains("emulator-vault"),
            "{unseeded}"
        );
        for host in [
            "example.com",
            "login.microsoftonline.com.evil.test",
            "127.0.0.1",
            IMDS,
        ] {
            let refused = proxy.tls_target(host).unwrap_err();
            assert!(refused.contains("never forwards"), "{host}: {refused}");
        }
    }

    #[test]
    fn a_host_certificate_is_issued_once() {
        let proxy = proxy();
        let first = proxy.tls_config("management.azure.com").unwrap();
        let again = proxy.tls_config("Management.Azure.com").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
    }
}
