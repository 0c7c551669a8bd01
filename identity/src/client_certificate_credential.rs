//! Authenticates an application with a certificate: the credential signs a client assertion
//! with the certificate's private key.
//!
//! Input: PKCS#12 (upstream's format; password in `options.password`) or PEM holding the
//! certificate and an unencrypted RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE
//! KEY`), as the other Azure SDKs accept. Parsing is pure Rust; no OpenSSL.
//!
//! The assertion follows Entra's documented format: `PS256` with an `x5t#S256` thumbprint;
//! claims `aud` (the token endpoint), `iss` = `sub` = the client id, `jti`, `nbf`, `iat`, `exp`
//! (10 minutes). It is reused until two minutes before it expires. With
//! `send_certificate_chain` (or `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=1|true`) the header also
//! carries `x5c`: the certificate and its chain, each standard base64 of the DER (upstream
//! sends base64 of the PEM text) for Entra's subject-name/issuer authentication.
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::{ClientCertificateCredential, ClientCertificateCredentialOptions};
//!
//! let pfx = std::fs::read("certificate-app.pfx")?;
//! let credential = ClientCertificateCredential::new(
//!     "11111111-1111-1111-1111-111111111111".into(),
//!     "33333333-3333-3333-3333-333333333333".into(),
//!     pfx.into(),
//!     Some(ClientCertificateCredentialOptions {
//!         password: Some("emulator-pfx-password".into()),
//!         ..Default::default()
//!     }),
//! )?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use rustls_pki_types::pem::{PemObject, SectionKind};
use serde::Serialize;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use azure_core::credentials::{Secret, SecretBytes};
use azure_core::error::{Error, ErrorKind};
use azure_core::http::ClientOptions;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use time::Duration;

use crate::confidential::{Confidential, Label};
use crate::errors::credential_error;
use crate::os::Os;
use crate::token::FetchRequest;
use crate::token::FetchedToken;

/// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`.
pub(crate) const AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: &str = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN";
const ASSERTION_LIFETIME: Duration = Duration::minutes(10);
/// Build a new assertion when the cached one has less than this left, so it cannot expire in
/// flight or on a server whose clock runs ahead.
const ASSERTION_RENEW_BEFORE: Duration = Duration::minutes(2);

const LABEL: Label = Label {
    name: "ClientCertificateCredential",
    fragment: Some("client-cert"),
};

/// Provides options to configure how the Identity library makes authentication requests to
/// Azure Active Directory.
#[derive(Debug, Clone, Default)]
pub struct ClientCertificateCredentialOptions {
    /// HTTP options: transport, retry, and `cloud` (the authority host).
    pub client_options: ClientOptions,
    /// The PKCS#12 password (ignored for PEM).
    pub password: Option<Secret>,
    /// Send the certificate chain (`x5c`) for subject-name/issuer authentication. Also enabled
    /// by `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=1|true`. (Addition beyond upstream.)
    pub send_certificate_chain: bool,
    /// Tenants besides the configured one that [`crate::TokenRequestExtras::tenant_id`] may
    /// name; `"*"` allows any. (Addition beyond upstream.)
    pub additionally_allowed_tenants: Vec<String>,
    /// A shared (distributed) cache under the in-memory one, for services with many replicas:
    /// one token request per identity and scope across them (see [`crate::shared_cache`]).
    /// (Addition beyond upstream.)
    pub shared_token_cache: Option<crate::SharedTokenCache>,
    /// Keep the application's tokens across runs in MSAL's persistent token cache, shared with
    /// the Python and JavaScript libraries' `cache_persistence_options` (see
    /// [`crate::TokenCachePersistenceOptions`]): a token another run or program cached is used
    /// until five minutes before it expires. (Addition beyond upstream.)
    pub token_cache_persistence_options: Option<crate::TokenCachePersistenceOptions>,
    /// Environment, files and clock. (Addition beyond upstream; defaults to the real ones.)
    pub os: Os,
}

/// A parsed certificate and its RSA key.
pub(crate) struct ParsedCertificate {
    key: RsaKeyPair,
    /// Leaf first, then the rest of the chain, DER.
    chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ParsedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedCertificate")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

fn parse_error(message: &str) -> Error {
    credential_error(message.to_string())
}

/// The sections of a PEM text (rustls-pki-types' parser; sections of unknown kinds are
/// skipped).
fn pem_sections(text: &str) -> azure_core::Result<Vec<(SectionKind, Vec<u8>)>> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| parse_error(&format!("the PEM input is malformed: {e}")))
}

fn rsa_key(der: &[u8], pkcs1: bool) -> azure_core::Result<RsaKeyPair> {
    let parsed = if pkcs1 {
        RsaKeyPair::from_der(der)
    } else {
        RsaKeyPair::from_pkcs8(der)
    };
    parsed.map_err(|_| parse_error("only RSA private keys are supported"))
}

fn rsa_modulus_of_certificate(der: &[u8]) -> azure_core::Result<Vec<u8>> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::public_key::PublicKey;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| {
        Error::with_error(
            ErrorKind::Credential,
            e.to_string(),
            "the certificate is not valid X.509",
        )
    })?;
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Ok(strip_zeros(rsa.modulus).to_vec()),
        _ => Err(parse_error("only RSA certificates are supported")),
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// Orders `certs` so the one matching `key` comes first.
fn with_leaf_first(key: RsaKeyPair, certs: Vec<Vec<u8>>) -> azure_core::Result<ParsedCertificate> {
    if certs.is_empty() {
        return Err(parse_error("the certificate input contains no certificate"));
    }
    let modulus =
        strip_zeros(key.public_key().modulus().big_endian_without_leading_zero()).to_vec();
    let mut leaf = None;
    for (i, der) in certs.iter().enumerate() {
        if rsa_modulus_of_certificate(der).is_ok_and(|m| m == modulus) {
            leaf = Some(i);
            break;
        }
    }
    let Some(leaf) = leaf else {
        return Err(parse_error(
            "the private key does not match the certificate: no certificate in the input has the key's public key",
        ));
    };
    let mut chain = certs;
    let leaf_der = chain.remove(leaf);
    chain.insert(0, leaf_der);
    Ok(ParsedCertificate { key, chain })
}

/// Parses PEM (certificate plus unencrypted key).
pub(crate) fn parse_pem(text: &str) -> azure_core::Result<ParsedCertificate> {
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(parse_error(
            "encrypted PEM private keys are not supported; decrypt the key or use PKCS#12 with a password",
        ));
    }
    let sections = pem_sections(text)?;
    let certs: Vec<Vec<u8>> = sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| der.clone())
        .collect();
    let key = sections.iter().find_map(|(kind, der)| match kind {
        SectionKind::PrivateKey => Some(rsa_key(der, false)),
        SectionKind::RsaPrivateKey => Some(rsa_key(der, true)),
        SectionKind::EcPrivateKey => Some(Err(parse_error("only RSA private keys are supported"))),
        _ => None,
    });
    let key = key.unwrap_or_else(|| Err(parse_error("the PEM input contains no private key")))?;
    with_leaf_first(key, certs)
}

/// Parses PKCS#12 DER with `password`.
pub(crate) fn parse_pkcs12(bytes: &[u8], password: &str) -> azure_core::Result<ParsedCertificate> {
    use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
    let store =
        KeyStore::from_pkcs12(bytes, password, Pkcs12ImportPolicy::Relaxed).map_err(|e| {
            let text = e.to_string();
            let message = if text.to_ascii_lowercase().contains("mac")
                || text.to_ascii_lowercase().contains("password")
            {
                "PKCS12 parsing failed: the password is wrong"
            } else {
                "deserializing PKCS12 from DER failed"
            };
            Error::with_error(ErrorKind::Credential, text, message)
        })?;
    let Some((_, chain)) = store.private_key_chain() else {
        return Err(parse_error("PKCS12 bundle contains no private key"));
    };
    let key = rsa_key(chain.key().as_der(), false)?;
    let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
    if certs.is_empty() {
        return Err(parse_error("PKCS12 bundle contains no certificate"));
    }
    with_leaf_first(key, certs)
}

/// Signs client assertions and reuses them until shortly before they expire.
pub(crate) struct AssertionSigner {
    certificate: ParsedCertificate,
    send_chain: bool,
    rng: SystemRandom,
    /// Token URL → (assertion, expiry).
    cached: Mutex<HashMap<String, (String, time::OffsetDateTime)>>,
}

/// The JOSE header of a certificate assertion: PS256, the leaf's SHA-256 thumbprint, and the
/// chain when asked for (subject name / issuer authentication).
#[derive(Serialize)]
struct AssertionHeader {
    alg: &'static str,
    typ: &'static str,
    #[serde(rename = "x5t#S256")]
    x5t_s256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<Vec<String>>,
}

/// The claims Entra requires of a client assertion.
#[derive(Serialize)]
struct AssertionClaims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

impl AssertionSigner {
    /// A signer for a PKCS#12 (with `password`) or PEM certificate and its private key.
    pub(crate) fn new(
        certificate: &SecretBytes,
        password: Option<&Secret>,
        send_chain: bool,
    ) -> azure_core::Result<Self> {
        let bytes = certificate.bytes();
        let text = std::str::from_utf8(bytes)
            .ok()
            .filter(|t| t.trim_start().starts_with("-----BEGIN"));
        let parsed = match text {
            Some(pem) => parse_pem(pem)?,
            None => parse_pkcs12(bytes, password.map_or("", |p| p.secret()))?,
        };
        Ok(Self {
            certificate: parsed,
            send_chain,
            rng: SystemRandom::new(),
            cached: Mutex::new(HashMap::new()),
        })
    }

    fn header(&self) -> AssertionHeader {
        let leaf = &self.certificate.chain[0];
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf);
        let chain = self.send_chain.then(|| {
            let chain = self.certificate.chain.iter();
            chain.map(|c| STANDARD.encode(c)).collect()
        });
        AssertionHeader {
            alg: "PS256",
            typ: "JWT",
            x5t_s256: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            x5c: chain,
        }
    }

    /// A client assertion for `audience` (the token endpoint), reused while fresh.
    pub(crate) fn assertion(
        &self,
        audience: &str,
        client_id: &str,
        os: &Os,
    ) -> azure_core::Result<String> {
        let now = os.now();
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((assertion, exp)) = cached.get(audience)
            && *exp - now > ASSERTION_RENEW_BEFORE
        {
            return Ok(assertion.clone());
        }
        let exp = now + ASSERTION_LIFETIME;
        let claims = AssertionClaims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now.unix_timestamp(),
            iat: now.unix_timestamp(),
            exp: exp.unix_timestamp(),
        };
        let assertion = self.sign(&claims)?;
        cached.insert(audience.to_string(), (assertion.clone(), exp));
        Ok(assertion)
    }

    /// A compact JWS of `claims` under [`Self::header`], signed RSASSA-PSS SHA-256.
    fn sign(&self, claims: &AssertionClaims<'_>) -> azure_core::Result<String> {
        let encode = |json: serde_json::Result<Vec<u8>>| {
            json.map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
                .map_err(|e| parse_error(&format!("failed to encode the assertion: {e}")))
        };
        let header = encode(serde_json::to_vec(&self.header()))?;
        let input = format!("{header}.{}", encode(serde_json::to_vec(claims))?);
        let key = &self.certificate.key;
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(
            &signature::RSA_PSS_SHA256,
            &self.rng,
            input.as_bytes(),
            &mut signature,
        )
        .map_err(|_| parse_error("failed to sign JWT"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// Enables authentication to Azure Active Directory using a client certificate that was
/// generated for an App Registration.
pub struct ClientCertificateCredential {
    core: Confidential,
    signer: AssertionSigner,
}

impl std::fmt::Debug for ClientCertificateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificateCredential")
            .field("tenant_id", &self.core.tenant_id)
            .field("client_id", &self.core.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientCertificateCredential {
    /// Creates a credential from a PKCS#12 or PEM certificate with its private key.
    ///
    /// # Errors
    /// A wrong PKCS#12 password, input without a private key or certificate, a non-RSA key, a
    /// key that does not match the certificate, an invalid tenant id, an empty client id, or an
    /// authority that is not https. Each error says which.
    pub fn new(
        tenant_id: String,
        client_id: String,
        certificate: SecretBytes,
        options: Option<ClientCertificateCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let env_chain = options
            .os
            .var(AZURE_CLIENT_SEND_CERTIFICATE_CHAIN)
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        let core = Confidential::new(
            LABEL,
            &tenant_id,
            &client_id,
            options.client_options,
            options.additionally_allowed_tenants,
            options.os,
        )?
        .with_shared(options.shared_token_cache)
        .with_persistence(options.token_cache_persistence_options.as_ref())?;
        let signer = AssertionSigner::new(
            &certificate,
            options.password.as_ref(),
            options.send_certificate_chain || env_chain,
        )?;
        Ok(Arc::new(Self { core, signer }))
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> azure_core::Result<FetchedToken> {
        let audience = self.core.client.token_url(request.tenant)?.to_string();
        let assertion = self
            .signer
            .assertion(&audience, &self.core.client_id, &self.core.os)?;
        self.core
            .client
            .request_with_assertion(&request, &self.core.client_id, &assertion, &self.core.os)
            .await
    }
}

crate::cached::cached_token_credential!(confidential ClientCertificateCredential);
