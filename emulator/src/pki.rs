//! The emulator's persistent key material: the local CA, the TLS server certificate, RSA key
//! rings for token signing and issuers, and generated application certificates.
//!
//! Everything lives in the state directory so a restart keeps the same CA (users configure trust
//! once) and the same signing keys (tokens issued before a restart still verify).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::crypto::{self, SigningKey};

/// Writes `bytes` to `path` atomically (write to a temporary file, then rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut tmp, bytes)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn pem_block(tag: &str, der: &[u8]) -> String {
    let body = crypto::b64std(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

/// PEM text of a DER certificate.
pub(crate) fn certificate_pem(der: &[u8]) -> String {
    pem_block("CERTIFICATE", der)
}

/// PEM text of a PKCS#8 DER private key.
pub(crate) fn private_key_pem(pkcs8: &[u8]) -> String {
    pem_block("PRIVATE KEY", pkcs8)
}

/// Every DER certificate in a PEM text, in order.
pub(crate) fn certificates_from_pem(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let after = &rest[start + "-----BEGIN CERTIFICATE-----".len()..];
        let Some(end) = after.find("-----END CERTIFICATE-----") else {
            break;
        };
        let body: String = after[..end].split_whitespace().collect();
        if let Some(der) = crypto::b64_any(&body) {
            out.push(der);
        }
        rest = &after[end..];
    }
    out
}

fn err(context: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{context}: {e}"))
}

fn validity(params: &mut CertificateParams, now: OffsetDateTime, days: i64) {
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(days);
}

/// The local certificate authority that signs the emulator's TLS certificates.
pub(crate) struct LocalCa {
    cert_der: Vec<u8>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    path: PathBuf,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").field("path", &self.path).finish()
    }
}

/// How long a CA certificate is valid. Users are told to trust the CA, so a copied key must
/// not be useful for long; the emulator re-issues the certificate from the same key before it
/// expires, so trust carries over.
const CA_VALIDITY_DAYS: i64 = 365;
/// Re-issue the CA certificate (same key) when less than this is left.
const CA_RENEW_BEFORE_DAYS: i64 = 30;

/// What to tell a user about a damaged file in the state directory.
fn damaged(path: &Path, what: &str) -> io::Error {
    io::Error::other(format!(
        "{} {what}: restore it, or delete it (or the whole state directory) to regenerate; clients must then trust the new CA",
        path.display()
    ))
}

/// The names the CA may sign for (a critical name constraint): the loopback names and
/// addresses. A copied `ca-key.pem` cannot impersonate any other site to machines that trust it.
fn loopback_constraints() -> NameConstraints {
    let mut v6_mask = [0u8; 16];
    v6_mask.fill(0xff);
    let mut v6_loopback = [0u8; 16];
    v6_loopback[15] = 1;
    NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".to_string()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0])),
            GeneralSubtree::IpAddress(CidrSubnet::V6(v6_loopback, v6_mask)),
        ],
        excluded_subtrees: Vec::new(),
    }
}

/// The Azure host names transparent mode answers for, and so the only names its CA may sign
/// for. A DNS constraint also permits the name's subdomains (`vault.azure.net` covers every
/// vault).
pub(crate) const TRANSPARENT_NAMES: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoft.com",
    "login.windows.net",
    "sts.windows.net",
    "management.azure.com",
    "management.core.windows.net",
    "vault.azure.net",
];

/// The names the transparent-mode CA may sign for: Azure's hosts the emulator answers for,
/// nothing else. Trusting it lets the emulator stand in for those hosts only.
fn transparent_constraints() -> NameConstraints {
    NameConstraints {
        permitted_subtrees: TRANSPARENT_NAMES
            .iter()
            .map(|name| GeneralSubtree::DnsName((*name).to_string()))
            .collect(),
        excluded_subtrees: Vec::new(),
    }
}

/// Which of the emulator's two certificate authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CaKind {
    /// `ca.pem`: the loopback listeners (`127.0.0.1`, `localhost`, `::1`).
    Loopback,
    /// `transparent-ca.pem`: Azure's own host names, for transparent (proxy) mode.
    Transparent,
}

impl CaKind {
    fn file_stem(self) -> &'static str {
        match self {
            Self::Loopback => "ca",
            Self::Transparent => "transparent-ca",
        }
    }

    fn common_name(self) -> &'static str {
        match self {
            Self::Loopback => "Entra Emulator Local CA",
            Self::Transparent => "Entra Emulator Transparent Mode CA",
        }
    }

    fn constraints(self) -> NameConstraints {
        match self {
            Self::Loopback => loopback_constraints(),
            Self::Transparent => transparent_constraints(),
        }
    }
}

/// The CA certificate's parameters.
fn ca_params(kind: CaKind) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, kind.common_name());
    dn.push(DnType::OrganizationName, "entra-emulator");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.name_constraints = Some(kind.constraints());
    validity(&mut params, crate::clock::wall_clock(), CA_VALIDITY_DAYS);
    params
}

/// The CA key: read from `ca-key.pem`, or made when neither CA file exists. An existing key is
/// never replaced; a certificate without its key is an error that says what to do.
fn load_or_create_ca_key(key_path: &Path, cert_path: &Path) -> io::Result<KeyPair> {
    match std::fs::read_to_string(key_path) {
        Ok(pem) => KeyPair::from_pem(&pem).map_err(|_| damaged(key_path, "is not a usable key")),
        Err(e) if e.kind() == io::ErrorKind::NotFound && cert_path.exists() => Err(damaged(
            cert_path,
            &format!(
                "exists but its key {} is missing, so the CA cannot sign",
                key_path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = KeyPair::generate().map_err(|e| err("generating the CA key", e))?;
            write_atomic(key_path, key.serialize_pem().as_bytes(), true)?;
            Ok(key)
        }
        Err(e) => Err(err(&format!("reading {}", key_path.display()), e)),
    }
}

/// Whether `pem` is a CA certificate for `key` with the name constraints and at least
/// [`CA_RENEW_BEFORE_DAYS`] of validity left.
fn ca_cert_is_current(pem: &str, key: &KeyPair) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Some(der) = certificates_from_pem(pem).into_iter().next() else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(&der) else {
        return false;
    };
    let same_key = cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw();
    let constrained = cert.name_constraints().ok().flatten().is_some();
    let renew_at = crate::clock::wall_clock() + Duration::days(CA_RENEW_BEFORE_DAYS);
    let fresh = cert.validity().not_after.timestamp() > renew_at.unix_timestamp();
    same_key && constrained && fresh
}

impl LocalCa {
    /// Loads the CA from `dir`, creating it on first use. The key is never replaced: a
    /// missing, damaged, expiring or unconstrained certificate is re-issued from it, so clients
    /// that trust the CA keep trusting it.
    pub(crate) fn load_or_create(dir: &Path) -> io::Result<Self> {
        Self::load_or_create_kind(dir, CaKind::Loopback)
    }

    /// [`load_or_create`](Self::load_or_create) for either CA (`{stem}.pem`, `{stem}-key.pem`).
    pub(crate) fn load_or_create_kind(dir: &Path, kind: CaKind) -> io::Result<Self> {
        let cert_path = dir.join(format!("{}.pem", kind.file_stem()));
        let key_path = dir.join(format!("{}-key.pem", kind.file_stem()));
        let key = load_or_create_ca_key(&key_path, &cert_path)?;
        let existing = std::fs::read_to_string(&cert_path).unwrap_or_default();
        let cert_pem = if ca_cert_is_current(&existing, &key) {
            existing
        } else {
            if !existing.is_empty() {
                tracing::warn!(path = %cert_path.display(), "re-issuing the CA certificate from the existing key");
            }
            let cert = ca_params(kind)
                .self_signed(&key)
                .map_err(|e| err("creating the CA certificate", e))?;
            write_atomic(&cert_path, cert.pem().as_bytes(), false)?;
            cert.pem()
        };
        let issuer =
            Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| err("reading ca.pem", e))?;
        let cert_der = certificates_from_pem(&cert_pem)
            .into_iter()
            .next()
            .ok_or_else(|| damaged(&cert_path, "holds no certificate"))?;
        Ok(Self {
            cert_der,
            cert_pem,
            issuer,
            path: cert_path,
        })
    }

    /// The CA certificate, PEM.
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Where the CA certificate is stored.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Issues a TLS server certificate for localhost, 127.0.0.1 and ::1 and builds a rustls
    /// configuration serving it over HTTP/2 and HTTP/1.1.
    pub(crate) fn server_config(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        self.server_config_for(
            "localhost",
            vec![
                SanType::DnsName("localhost".try_into().map_err(|e| err("SAN", e))?),
                SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
                SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
            ],
        )
    }

    /// A rustls configuration serving a new certificate for the DNS name `host` (transparent
    /// mode issues one per Azure host a client asks for).
    pub(crate) fn server_config_for_host(
        &self,
        host: &str,
    ) -> io::Result<Arc<rustls::ServerConfig>> {
        let name = host
            .to_string()
            .try_into()
            .map_err(|e| err("the certificate's host name", e))?;
        self.server_config_for(host, vec![SanType::DnsName(name)])
    }

    fn server_config_for(
        &self,
        common_name: &str,
        names: Vec<SanType>,
    ) -> io::Result<Arc<rustls::ServerConfig>> {
        let key = KeyPair::generate().map_err(|e| err("generating the server key", e))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = names;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, crate::clock::wall_clock(), 365);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| err("issuing the server certificate", e))?;
        let chain = vec![
            cert.der().clone(),
            CertificateDer::from(self.cert_der.clone()),
        ];
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("TLS versions", e))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| err("TLS configuration", e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The Service Fabric endpoint's own self-signed TLS certificate (not signed by the local CA:
/// Service Fabric clients pin its thumbprint instead), persisted in `service-fabric.pem`.
/// Returns the TLS configuration and the SHA-1 thumbprint as upper-case hex.
pub(crate) fn service_fabric_tls(dir: &Path) -> io::Result<(Arc<rustls::ServerConfig>, String)> {
    let path = dir.join("service-fabric.pem");
    if !path.exists() {
        let key = KeyPair::generate().map_err(|e| err("generating the Service Fabric key", e))?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "Entra Emulator Service Fabric");
        params.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into().map_err(|e| err("SAN", e))?),
            SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        ];
        validity(&mut params, crate::clock::wall_clock(), 3650);
        let cert = params
            .self_signed(&key)
            .map_err(|e| err("creating the Service Fabric certificate", e))?;
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        write_atomic(&path, pem.as_bytes(), true)?;
    }
    let text = std::fs::read_to_string(&path)?;
    let cert = certificates_from_pem(&text)
        .into_iter()
        .next()
        .ok_or_else(|| damaged(&path, "holds no certificate"))?;
    let key_pem = text
        .find("-----BEGIN PRIVATE KEY-----")
        .map(|at| &text[at..])
        .ok_or_else(|| damaged(&path, "holds no private key"))?;
    let key = KeyPair::from_pem(key_pem).map_err(|_| damaged(&path, "holds no usable key"))?;
    let thumbprint: String = crypto::sha1(&cert)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| err("TLS configuration", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), thumbprint))
}

/// A self-signed RSA certificate for `common_name`: (PKCS#8 key DER, certificate DER).
pub(crate) fn self_signed_rsa(common_name: &str, days: i64) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let pkcs8 = crypto::generate_rsa_pkcs8().map_err(io::Error::other)?;
    let key = KeyPair::try_from(pkcs8.as_slice()).map_err(|e| err("loading the RSA key", e))?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, crate::clock::wall_clock(), days);
    let cert = params
        .self_signed(&key)
        .map_err(|e| err("creating a certificate", e))?;
    Ok((pkcs8, cert.der().to_vec()))
}

/// One persisted key of a [`KeyRing`].
#[derive(Serialize, Deserialize, Clone)]
struct StoredKey {
    created: i64,
    retired: Option<i64>,
    pkcs8: String,
    certificate: String,
}

/// A set of RSA signing keys: one current key plus retired keys kept for a grace period.
#[derive(Debug)]
pub(crate) struct KeyRing {
    path: PathBuf,
    current: SigningKey,
    retired: Vec<(i64, SigningKey)>,
    stored: Vec<StoredKey>,
    common_name: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredKey(<redacted>)")
    }
}

impl KeyRing {
    /// Loads the ring at `path`, creating a first key when the file does not exist.
    /// `now` (the emulator's clock) stamps a new key's creation.
    pub(crate) fn load_or_create(path: PathBuf, common_name: &str, now: i64) -> io::Result<Self> {
        let mut stored: Vec<StoredKey> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| err(&format!("reading {}", path.display()), e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        if stored.is_empty() {
            stored.push(new_stored_key(common_name, now)?);
            persist_ring(&path, &stored)?;
        }
        let (current, retired) = parse_ring(&stored)?;
        Ok(Self {
            path,
            current,
            retired,
            stored,
            common_name: common_name.to_string(),
        })
    }

    /// The key that signs new tokens.
    pub(crate) fn current(&self) -> &SigningKey {
        &self.current
    }

    /// Every key that verification should accept at `now` (current first).
    pub(crate) fn published(&self, now: i64, grace_secs: u64) -> Vec<SigningKey> {
        let mut keys = vec![self.current.clone()];
        keys.extend(
            self.retired
                .iter()
                .filter(|(at, _)| now.saturating_sub(*at) < grace_secs as i64)
                .map(|(_, k)| k.clone()),
        );
        keys
    }

    /// Makes a fresh key current; the previous one is retired at `now` and stays published for
    /// the grace period. Persists the ring.
    pub(crate) fn rotate(&mut self, now: i64) -> io::Result<()> {
        let mut stored = self.stored.clone();
        for key in &mut stored {
            key.retired.get_or_insert(now);
        }
        stored.push(new_stored_key(&self.common_name, now)?);
        persist_ring(&self.path, &stored)?;
        let (current, retired) = parse_ring(&stored)?;
        self.current = current;
        self.retired = retired;
        self.stored = stored;
        Ok(())
    }
}

type ParsedRing = (SigningKey, Vec<(i64, SigningKey)>);

fn parse_ring(stored: &[StoredKey]) -> io::Result<ParsedRing> {
    let mut current = None;
    let mut retired = Vec::new();
    for key in stored {
        let pkcs8 = crypto::b64_any(&key.pkcs8).ok_or_else(|| err("key ring", "bad key"))?;
        let cert = crypto::b64_any(&key.certificate).ok_or_else(|| err("key ring", "bad cert"))?;
        let signing = SigningKey::new(&pkcs8, cert).map_err(|e| err("key ring", e))?;
        match key.retired {
            None => current = Some(signing),
            Some(at) => retired.push((at, signing)),
        }
    }
    let current = current.ok_or_else(|| err("key ring", "no current key"))?;
    Ok((current, retired))
}

fn new_stored_key(common_name: &str, now: i64) -> io::Result<StoredKey> {
    let (pkcs8, cert) = self_signed_rsa(common_name, 3650)?;
    Ok(StoredKey {
        created: now,
        retired: None,
        pkcs8: crypto::b64std(&pkcs8),
        certificate: crypto::b64std(&cert),
    })
}

fn persist_ring(path: &Path, stored: &[StoredKey]) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(stored).map_err(io::Error::other)?;
    write_atomic(path, &json, true)
}

/// An application certificate generated by the emulator, with the files handed to clients.
#[derive(Debug, Clone)]
pub(crate) struct GeneratedCertificate {
    /// The certificate, DER.
    pub(crate) certificate_der: Vec<u8>,
    /// Certificate plus private key, PEM (what `AZURE_CLIENT_CERTIFICATE_PATH` takes).
    pub(crate) pem_path: PathBuf,
    /// PKCS#12 with the password.
    pub(crate) pfx_path: PathBuf,
}

/// Loads `certs/<name>.pem` (certificate plus key) and `certs/<name>.pfx`, creating both on
/// first use.
pub(crate) fn load_or_generate_app_certificate(
    dir: &Path,
    name: &str,
    pfx_password: &str,
) -> io::Result<GeneratedCertificate> {
    let pem_path = dir.join("certs").join(format!("{name}.pem"));
    let pfx_path = dir.join("certs").join(format!("{name}.pfx"));
    if !pem_path.exists() {
        let (pkcs8, cert) = self_signed_rsa(name, 730)?;
        let pem = format!("{}{}", certificate_pem(&cert), private_key_pem(&pkcs8));
        write_atomic(&pem_path, pem.as_bytes(), true)?;
        let pfx = build_pfx(&pkcs8, &cert, pfx_password)?;
        write_atomic(&pfx_path, &pfx, true)?;
    }
    let text = std::fs::read_to_string(&pem_path)?;
    repair_pfx(&text, &pem_path, &pfx_path, pfx_password)?;
    let certificate_der = certificates_from_pem(&text)
        .into_iter()
        .next()
        .ok_or_else(|| err(&format!("reading {}", pem_path.display()), "no certificate"))?;
    Ok(GeneratedCertificate {
        certificate_der,
        pem_path,
        pfx_path,
    })
}

/// Rebuilds a missing or unreadable `.pfx` from its `.pem` (same key and certificate); a `.pem`
/// without both is an error that says what to do.
fn repair_pfx(pem: &str, pem_path: &Path, pfx_path: &Path, password: &str) -> io::Result<()> {
    use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
    use rustls_pki_types::pem::PemObject;
    let readable = std::fs::read(pfx_path).ok().is_some_and(|bytes| {
        KeyStore::from_pkcs12(&bytes, password, Pkcs12ImportPolicy::Relaxed).is_ok()
    });
    if readable {
        return Ok(());
    }
    let cert = certificates_from_pem(pem).into_iter().next();
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok();
    let (Some(cert), Some(key)) = (cert, key) else {
        return Err(io::Error::other(format!(
            "{} lacks its certificate or key: delete it and {} to regenerate both (the app's registered certificate changes with them)",
            pem_path.display(),
            pfx_path.display()
        )));
    };
    tracing::warn!(path = %pfx_path.display(), "rebuilding the PKCS#12 file from its PEM");
    let pfx = build_pfx(key.secret_der(), &cert, password)?;
    write_atomic(pfx_path, &pfx, true)
}

/// A PKCS#12 file (PBES2 with AES-256 and an HMAC-SHA256 MAC) holding `pkcs8` and `cert`.
pub(crate) fn build_pfx(pkcs8: &[u8], cert: &[u8], password: &str) -> io::Result<Vec<u8>> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let certificate = Certificate::from_der(cert).map_err(|e| err("PKCS#12 certificate", e))?;
    let key = PrivateKey::from_der(pkcs8).map_err(|e| err("PKCS#12 key", e))?;
    let local_key_id = crypto::sha1(cert);
    let chain = PrivateKeyChain::new(local_key_id, key, [certificate]);
    let mut store = KeyStore::new();
    store.add_entry("1", KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .write()
        .map_err(|e| err("writing PKCS#12", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ring_rotates_and_keeps_the_previous_key_for_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ring.json");
        let mut ring = KeyRing::load_or_create(path.clone(), "test", 1_000).unwrap();
        let first = ring.current().kid().to_string();
        ring.rotate(1_000).unwrap();
        let second = ring.current().kid().to_string();
        assert_ne!(first, second);
        let kids =
            |keys: Vec<SigningKey>| keys.iter().map(|k| k.kid().to_string()).collect::<Vec<_>>();
        assert_eq!(
            kids(ring.published(1_010, 60)),
            [second.clone(), first.clone()]
        );
        assert_eq!(
            kids(ring.published(1_060, 60)),
            std::slice::from_ref(&second)
        );
        let reloaded = KeyRing::load_or_create(path, "test", 1_000).unwrap();
        assert_eq!(reloaded.current().kid(), second);
        assert_eq!(kids(reloaded.published(1_010, 60)), [second, first]);
    }

    #[test]
    fn generated_app_certificate_is_stable_and_its_pfx_opens() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_generate_app_certificate(dir.path(), "app", "pw").unwrap();
        let b = load_or_generate_app_certificate(dir.path(), "app", "pw").unwrap();
        assert_eq!(a.certificate_der, b.certificate_der);
        let pfx = std::fs::read(&a.pfx_path).unwrap();
        let store = p12_keystore::KeyStore::from_pkcs12(
            &pfx,
            "pw",
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .unwrap();
        let (_, chain) = store.private_key_chain().unwrap();
        assert_eq!(chain.certs()[0].as_der(), a.certificate_der.as_slice());
        assert!(
            p12_keystore::KeyStore::from_pkcs12(
                &pfx,
                "wrong",
                p12_keystore::Pkcs12ImportPolicy::Strict
            )
            .is_err()
        );
    }
}
