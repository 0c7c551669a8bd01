//! The Service Fabric endpoint's TLS: its certificate is self-signed, so instead of a CA the
//! client pins its SHA-1 thumbprint (`IDENTITY_SERVER_THUMBPRINT`), as the newest MSAL does.

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::Transport;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::errors::credential_error;

/// Accepts exactly the certificate whose SHA-1 is `expected`; handshake signatures are still
/// verified with that certificate's key.
#[derive(Debug)]
struct PinnedThumbprint {
    expected: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedThumbprint {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, end_entity);
        if digest.as_ref() == self.expected.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Parses a thumbprint: 40 hex digits, ignoring `:` and whitespace.
pub(super) fn parse_thumbprint(text: &str) -> azure_core::Result<Vec<u8>> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let invalid = || {
        credential_error(format!(
            "IDENTITY_SERVER_THUMBPRINT must be 40 hexadecimal digits (a SHA-1 thumbprint); got '{text}'"
        ))
    };
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    (0..40)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| invalid()))
        .collect()
}

/// A transport that trusts only the certificate with `thumbprint`, over HTTPS, with no
/// redirects and bounded timeouts.
pub(super) fn pinned_transport(thumbprint: &str) -> azure_core::Result<Transport> {
    let expected = parse_thumbprint(thumbprint)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PinnedThumbprint {
        expected,
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| credential_error(format!("TLS configuration for Service Fabric: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| credential_error(format!("building the Service Fabric HTTP client: {e}")))?;
    Ok(Transport::new(Arc::new(client)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_parse_with_separators_and_reject_garbage() {
        let t = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01";
        assert_eq!(parse_thumbprint(t).unwrap().len(), 20);
        assert_eq!(
            parse_thumbprint(&t.replace(':', " ").to_lowercase())
                .unwrap()
                .len(),
            20
        );
        assert!(parse_thumbprint("abc").is_err());
        assert!(parse_thumbprint(&"zz".repeat(20)).is_err());
    }
}
