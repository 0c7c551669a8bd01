//! ClientCertificateCredential: PKCS#12 and PEM input against the emulator, and the
//! construction errors.
// Tests prepare fixtures with the real file system and clock; only the code under test is
// restricted to `azure_identity::os`.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::os::{MapEnv, Os};
use azure_identity::{ClientCertificateCredential, ClientCertificateCredentialOptions};
use entra_emulator::{Emulator, well_known};

const ARM: &str = "https://management.azure.com/.default";

fn new(
    emu: &Emulator,
    bytes: Vec<u8>,
    password: Option<&str>,
    env: MapEnv,
) -> azure_core::Result<Arc<ClientCertificateCredential>> {
    ClientCertificateCredential::new(
        well_known::TENANT_ID.into(),
        well_known::CERTIFICATE_APP_CLIENT_ID.into(),
        bytes.into(),
        Some(ClientCertificateCredentialOptions {
            client_options: emu.client_options(),
            password: password.map(|p| Secret::new(p.to_string())),
            os: Os {
                env: Arc::new(env),
                ..Os::default()
            },
            ..Default::default()
        }),
    )
}

fn files(emu: &Emulator) -> (Vec<u8>, Vec<u8>) {
    let (pem, pfx) = emu
        .generated_certificate_paths(well_known::CERTIFICATE_NAME)
        .unwrap();
    (std::fs::read(pem).unwrap(), std::fs::read(pfx).unwrap())
}

#[tokio::test]
async fn pkcs12_and_pem_both_authenticate_with_a_ps256_assertion() {
    let emu = Emulator::start().await.unwrap();
    let (pem, pfx) = files(&emu);
    for (bytes, password) in [(pfx, Some(well_known::PFX_PASSWORD)), (pem, None)] {
        let cred = new(&emu, bytes, password, MapEnv::new()).unwrap();
        let token = cred.get_token(&[ARM], None).await.unwrap();
        assert_eq!(token.token.secret().split('.').count(), 3);
    }
}

#[tokio::test]
async fn assertions_are_reused_and_x5c_is_sent_when_asked() {
    let emu = Emulator::start().await.unwrap();
    let (pem, _) = files(&emu);
    let env = MapEnv::from([("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "true")]);
    let cred = new(&emu, pem, None, env).unwrap();
    cred.get_token(&[ARM], None).await.unwrap();
    // A different scope is a cache miss, but the assertion is reused.
    cred.get_token(&["https://vault.azure.net/.default"], None)
        .await
        .unwrap();
    assert_eq!(
        emu.requests().iter().filter(|r| r.method == "POST").count(),
        2,
        "two token requests"
    );
}

#[tokio::test]
async fn construction_errors_say_what_is_wrong() {
    let emu = Emulator::start().await.unwrap();
    let (pem, pfx) = files(&emu);
    let text = String::from_utf8(pem.clone()).unwrap();
    let cert_only: String = text
        .split("-----BEGIN PRIVATE KEY-----")
        .next()
        .unwrap()
        .to_string();
    let other_key =
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .unwrap();
    let mismatched = format!("{cert_only}{}", other_key.serialize_pem());
    let ec_key = rcgen::KeyPair::generate().unwrap();
    let ec = format!("{cert_only}{}", ec_key.serialize_pem());
    let cases: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
        (pfx.clone(), Some("wrong password"), "PKCS12 parsing failed"),
        (
            b"definitely not a certificate".to_vec(),
            None,
            "deserializing PKCS12 from DER failed",
        ),
        (
            cert_only.into_bytes(),
            None,
            "the PEM input contains no private key",
        ),
        (
            mismatched.into_bytes(),
            None,
            "the private key does not match the certificate",
        ),
        (ec.into_bytes(), None, "only RSA private keys are supported"),
    ];
    for (bytes, password, expected) in cases {
        let err = new(&emu, bytes, password, MapEnv::new()).unwrap_err();
        assert!(
            err.to_string().contains(expected),
            "expected '{expected}', got '{err}'"
        );
    }
}

#[tokio::test]
async fn debug_output_shows_no_key_material() {
    let emu = Emulator::start().await.unwrap();
    let (pem, _) = files(&emu);
    let cred = new(&emu, pem, None, MapEnv::new()).unwrap();
    let debug = format!("{cred:?}");
    assert!(debug.contains(well_known::CERTIFICATE_APP_CLIENT_ID));
    assert!(!debug.contains("PRIVATE"), "{debug}");
    assert!(!debug.contains("MII"), "{debug}");
}
