//! RSA keys, certificates, thumbprints and compact JWS signing and verification.
//!
//! Signing and verification go through aws-lc-rs (constant-time, FIPS-grade RSA), never through
//! the `rsa` crate's private-key operations. A [`SigningKey`] keeps its parsed key pair so that a
//! token costs one RSA operation and no key parsing.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;

/// Base64url without padding, as used in JWTs and JWKS.
pub(crate) fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Standard base64 with padding.
pub(crate) fn b64std(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64 in any of the four common spellings: standard or url-safe, padded or not.
pub(crate) fn b64_any(text: &str) -> Option<Vec<u8>> {
    let normalized: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(normalized).ok()
}

/// SHA-1 of `bytes` (certificate thumbprints only).
pub(crate) fn sha1(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

/// SHA-256 of `bytes`.
/// A base64url string of `len` random bytes (token ids, codes, cookies).
pub(crate) fn random_b64(len: usize) -> String {
    let bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
    b64url(bytes)
}

/// A stable UUID derived from `text` (object ids the seed leaves out).
pub(crate) fn derived_uuid(text: &str) -> String {
    let digest = sha256(text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Compares without an early exit, so the time taken does not reveal the matching prefix.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, bytes).as_ref().to_vec()
}

/// Strips the leading zero bytes of a big-endian unsigned integer.
fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// An RSA public key as modulus and exponent, with the identifiers JWKS and assertions use.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaPublicKey {
    /// Big-endian modulus, no leading zeros.
    pub(crate) n: Vec<u8>,
    /// Big-endian public exponent, no leading zeros.
    pub(crate) e: Vec<u8>,
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.n.len() * 8)
    }
}

impl RsaPublicKey {
    /// Builds a key from big-endian components, tolerating leading zeros.
    pub(crate) fn from_components(n: &[u8], e: &[u8]) -> Self {
        Self {
            n: strip_leading_zeros(n).to_vec(),
            e: strip_leading_zeros(e).to_vec(),
        }
    }

    /// Extracts the RSA public key of a DER certificate.
    pub(crate) fn from_certificate_der(der: &[u8]) -> Result<Self, String> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        use x509_parser::public_key::PublicKey;
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("the certificate is not valid DER: {e}"))?;
        match cert.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => Ok(Self::from_components(rsa.modulus, rsa.exponent)),
            Ok(_) => Err("the certificate's key is not an RSA key".into()),
            Err(e) => Err(format!(
                "the certificate's public key cannot be parsed: {e}"
            )),
        }
    }

    /// Verifies `signature` over `message` with the JWS algorithm `alg` (RS256 or PS256).
    pub(crate) fn verify(&self, alg: &str, message: &[u8], signature: &[u8]) -> bool {
        let params: &signature::RsaParameters = match alg {
            "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
            "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
            _ => return false,
        };
        let key = signature::RsaPublicKeyComponents {
            n: self.n.as_slice(),
            e: self.e.as_slice(),
        };
        key.verify(params, message, signature).is_ok()
    }

    /// The key as a JWK (without identifiers).
    pub(crate) fn jwk_components(&self) -> (String, String) {
        (b64url(&self.n), b64url(&self.e))
    }
}

/// Generates a fresh RSA-2048 key pair and returns it as PKCS#8 DER.
pub(crate) fn generate_rsa_pkcs8() -> Result<Vec<u8>, String> {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .map_err(|e| format!("RSA key generation failed: {e}"))?;
    Ok(key.serialize_der())
}

/// An RSA private key with its certificate, ready to sign JWTs.
#[derive(Clone)]
pub(crate) struct SigningKey {
    inner: Arc<SigningKeyInner>,
}

struct SigningKeyInner {
    key_pair: RsaKeyPair,
    public: RsaPublicKey,
    certificate_der: Vec<u8>,
    /// `kid` and `x5t`: base64url SHA-1 of the certificate, as Entra publishes them.
    kid: String,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.inner.kid)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// Loads a key from PKCS#8 DER and its certificate's DER.
    pub(crate) fn new(pkcs8: &[u8], certificate_der: Vec<u8>) -> Result<Self, String> {
        let key_pair = RsaKeyPair::from_pkcs8(pkcs8)
            .map_err(|e| format!("the signing key is not a valid RSA PKCS#8 key: {e}"))?;
        let public = {
            let pk = key_pair.public_key();
            RsaPublicKey::from_components(
                pk.modulus().big_endian_without_leading_zero(),
                pk.exponent().big_endian_without_leading_zero(),
            )
        };
        let kid = b64url(sha1(&certificate_der));
        Ok(Self {
            inner: Arc::new(SigningKeyInner {
                key_pair,
                public,
                certificate_der,
                kid,
                rng: SystemRandom::new(),
            }),
        })
    }

    /// The key identifier (`kid`, equal to `x5t`).
    pub(crate) fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The public half.
    pub(crate) fn public(&self) -> &RsaPublicKey {
        &self.inner.public
    }

    /// The certificate, DER.
    pub(crate) fn certificate_der(&self) -> &[u8] {
        &self.inner.certificate_der
    }

    /// Signs `claims` as an RS256 JWT whose header carries `kid` (and `x5t` when `with_x5t`).
    pub(crate) fn sign_jwt<C: Serialize>(&self, claims: &C, with_x5t: bool) -> String {
        #[derive(Serialize)]
        struct Header<'a> {
            typ: &'static str,
            alg: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            x5t: Option<&'a str>,
            kid: &'a str,
        }
        let header = Header {
            typ: "JWT",
            alg: "RS256",
            x5t: with_x5t.then_some(self.kid()),
            kid: self.kid(),
        };
        // Serialising these plain structs cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let claims = serde_json::to_vec(claims).unwrap_or_default();
        let mut jwt = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 360);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jwt);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jwt);
        let signature = self.sign(jwt.as_bytes());
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        jwt
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        let inner = &self.inner;
        let mut signature = vec![0; inner.key_pair.public_modulus_len()];
        // Signing with a valid, already parsed key into a buffer of the modulus size only fails
        // if the RNG fails, which aws-lc treats as fatal anyway.
        if inner
            .key_pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &inner.rng,
                message,
                &mut signature,
            )
            .is_err()
        {
            signature.clear();
        }
        signature
    }
}

/// A compact JWS split into its parts, with the header and payload parsed as JSON.
#[derive(Debug)]
pub(crate) struct ParsedJwt {
    pub(crate) header: serde_json::Value,
    pub(crate) claims: serde_json::Value,
    pub(crate) signing_input: String,
    pub(crate) signature: Vec<u8>,
}

impl ParsedJwt {
    /// Parses a compact JWS without verifying it. `None` when it is not a well-formed JWT.
    pub(crate) fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value = serde_json::from_slice(&b64_any(h)?).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&b64_any(p)?).ok()?;
        if !header.is_object() || !claims.is_object() {
            return None;
        }
        Some(Self {
            header,
            claims,
            signing_input: format!("{h}.{p}"),
            signature: b64_any(s)?,
        })
    }

    /// A header field as a string.
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(|v| v.as_str())
    }

    /// A claim as a string.
    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(|v| v.as_str())
    }

    /// A numeric date claim (seconds; fractional values are truncated, as Entra accepts them).
    pub(crate) fn claim_time(&self, name: &str) -> Option<i64> {
        let value = self.claims.get(name)?;
        value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f as i64))
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
    }

    /// Whether the signature verifies with `key` under the header's algorithm.
    pub(crate) fn verify_with(&self, key: &RsaPublicKey) -> bool {
        let alg = self.header_str("alg").unwrap_or_default();
        key.verify(alg, self.signing_input.as_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_any_accepts_all_spellings() {
        let bytes = [0xfbu8, 0xff, 0xbf, 0x01];
        for text in [
            STANDARD.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            STANDARD.encode(bytes).trim_end_matches('=').to_string(),
            base64::engine::general_purpose::URL_SAFE.encode(bytes),
        ] {
            assert_eq!(b64_any(&text).as_deref(), Some(&bytes[..]), "{text}");
        }
        assert_eq!(b64_any("not base64!"), None);
    }

    #[test]
    fn parse_rejects_malformed_tokens() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.??.xx",
            "e30.e30",
            "bnVsbA.bnVsbA.AA",
        ] {
            assert!(ParsedJwt::parse(bad).is_none(), "{bad}");
        }
        assert!(ParsedJwt::parse("e30.e30.").is_some());
    }
}
