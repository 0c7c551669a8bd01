//! Helpers shared by the emulator's integration tests.
#![allow(clippy::disallowed_methods)] // tests compare against the real time
#![allow(dead_code, unreachable_pub)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use entra_emulator::{Emulator, well_known};
use serde_json::{Value, json};

pub const ARM: &str = "https://management.azure.com/.default";

pub async fn emulator() -> Emulator {
    Emulator::start().await.expect("emulator starts")
}

/// POSTs a form to the v2 token endpoint of `tenant`; returns (status, JSON body).
pub async fn token(emu: &Emulator, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = emu
        .http_client()
        .post(emu.token_url(tenant))
        .form(form)
        .send()
        .await
        .expect("request reaches the emulator");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

pub fn secret_form<'a>(secret: &'a str, scope: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", well_known::SECRET_APP_CLIENT_ID),
        ("client_secret", secret),
        ("scope", scope),
    ]
}

/// Asserts an Entra error body carries `code` and the right shape.
pub fn assert_entra_error(status: u16, body: &Value, code: u32, http: u16) {
    assert_eq!(status, http, "status for AADSTS{code}: {body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for field in [
        "error",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    ] {
        assert!(body[field].is_string(), "missing {field}: {body}");
    }
}

/// The certificate app's key (PKCS#8 DER) and certificate (DER) from its PEM file.
pub fn certificate_app_material(emu: &Emulator) -> (Vec<u8>, Vec<u8>) {
    let (pem_path, _) = emu
        .generated_certificate_paths(well_known::CERTIFICATE_NAME)
        .expect("generated certificate");
    let text = std::fs::read_to_string(pem_path).unwrap();
    let block = |tag: &str| {
        let begin = format!("-----BEGIN {tag}-----");
        let end = format!("-----END {tag}-----");
        let start = text.find(&begin).unwrap() + begin.len();
        let stop = text.find(&end).unwrap();
        let body: String = text[start..stop].split_whitespace().collect();
        STANDARD.decode(body).unwrap()
    };
    (block("PRIVATE KEY"), block("CERTIFICATE"))
}

pub fn sha1(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, bytes)
        .as_ref()
        .to_vec()
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// Signs a compact JWS with an RSA PKCS#8 key, RS256 or PS256.
pub fn sign(pkcs8: &[u8], header: &Value, claims: &Value) -> String {
    let key = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
    let alg: &'static dyn signature::RsaEncoding = match header["alg"].as_str() {
        Some("PS256") => &signature::RSA_PSS_SHA256,
        _ => &signature::RSA_PKCS1_SHA256,
    };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(alg, &SystemRandom::new(), input.as_bytes(), &mut sig)
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims of a certificate assertion for the certificate app.
pub fn assertion_claims(emu: &Emulator, now: i64) -> Value {
    json!({
        "aud": emu.token_url(well_known::TENANT_ID),
        "iss": well_known::CERTIFICATE_APP_CLIENT_ID,
        "sub": well_known::CERTIFICATE_APP_CLIENT_ID,
        "jti": "6f1b6c1e-0000-4000-8000-000000000000",
        "nbf": now,
        "exp": now + 300,
    })
}

pub fn assertion_form(client_id: &str, assertion: &str, scope: &str) -> Vec<(String, String)> {
    vec![
        ("grant_type".into(), "client_credentials".into()),
        ("client_id".into(), client_id.into()),
        (
            "client_assertion_type".into(),
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ),
        ("client_assertion".into(), assertion.into()),
        ("scope".into(), scope.into()),
    ]
}

pub async fn token_owned(emu: &Emulator, tenant: &str, form: &[(String, String)]) -> (u16, Value) {
    let borrowed: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    token(emu, tenant, &borrowed).await
}

/// Decodes a JWT's claims without verifying.
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The emulator binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_entra-emulator");

/// The flags that put every listener on a free port.
pub const FREE_PORTS: [&str; 6] = [
    "--https-port",
    "0",
    "--http-port",
    "0",
    "--service-fabric-port",
    "0",
];

/// The binary on free ports with `state` as its state directory.
pub fn binary(state: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command.args(FREE_PORTS).arg("--state-dir").arg(state);
    command
}

/// Waits (at most 30 s) for a starting emulator's ready file; kills and reaps it on timeout.
pub fn wait_ready(
    child: &mut std::process::Child,
    path: &std::path::Path,
) -> entra_emulator::ReadyInfo {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(ready) = entra_emulator::ReadyInfo::read(path) {
            return ready;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no ready file at {} after 30 s", path.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A number from the environment variable `name`, else `default` (benchmark settings).
pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts the binary on free ports with its state in `state` and logging at warnings; waits
/// (bounded) for its ready file. The caller kills and reaps the child.
#[allow(clippy::zombie_processes)]
pub fn start_binary(state: &std::path::Path) -> (std::process::Child, entra_emulator::ReadyInfo) {
    let ready_path = state.join("ready.json");
    let mut child = binary(&state.join("state"))
        .arg("--ready-file")
        .arg(&ready_path)
        .env("ENTRA_EMULATOR_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("emulator starts");
    let ready = wait_ready(&mut child, &ready_path);
    (child, ready)
}
