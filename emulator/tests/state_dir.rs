//! One emulator per state directory: a second one is refused with the holder's PID, in process
//! and across processes; the directory it creates is private to its owner.

mod common;

use std::process::Stdio;

use common::*;
use entra_emulator::{Emulator, StartError};

#[tokio::test]
async fn a_second_emulator_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = Emulator::builder().state_dir(&state).start().await.unwrap();
    let Err(error) = Emulator::builder().state_dir(&state).start().await else {
        panic!("a second emulator started on a directory in use");
    };
    assert!(
        matches!(error, StartError::InUse { pid: Some(pid), .. } if pid == std::process::id()),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("pass another --state-dir")
            && text.contains(&format!("PID {}", std::process::id())),
        "{text}"
    );
    drop(first);
    // Released with the emulator: the directory can be used again.
    Emulator::builder().state_dir(&state).start().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_state_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("new-state");
    let _emu = Emulator::builder().state_dir(&state).start().await.unwrap();
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_second_process_is_told_which_pid_holds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ready = dir.path().join("ready.json");
    let mut first = binary(&state)
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&mut first, &ready);
    let second = binary(&state).output().unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("in use by PID {}", first.id())),
        "{stderr}"
    );
}

async fn start_on(state: &std::path::Path) -> Result<Emulator, StartError> {
    Emulator::builder().state_dir(state).start().await
}

/// A deleted `ca.pem` is re-issued from the existing key: the key is never replaced, and a
/// client that trusted the old certificate still connects.
#[tokio::test]
async fn a_lost_ca_certificate_is_reissued_from_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let old_ca = {
        let emu = start_on(&state).await.unwrap();
        emu.ca_cert_pem().to_string()
    };
    let key_before = std::fs::read(state.join("ca-key.pem")).unwrap();
    std::fs::remove_file(state.join("ca.pem")).unwrap();
    let emu = start_on(&state).await.unwrap();
    assert_eq!(
        std::fs::read(state.join("ca-key.pem")).unwrap(),
        key_before,
        "the key is kept"
    );
    let trusting_old = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(old_ca.as_bytes()).unwrap()])
        .no_proxy()
        .build()
        .unwrap();
    let health = trusting_old
        .get(format!("{}/_emulator/health", emu.https_url()))
        .send()
        .await
        .expect("a client trusting the old CA certificate still connects");
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_missing_or_damaged_ca_key_stops_the_start_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    drop(start_on(&state).await.unwrap());
    let key = state.join("ca-key.pem");
    let saved = std::fs::read(&key).unwrap();
    std::fs::remove_file(&key).unwrap();
    let text = start_on(&state).await.unwrap_err().to_string();
    assert!(
        text.contains("ca-key.pem is missing") && text.contains("delete"),
        "{text}"
    );
    assert!(!key.exists(), "no new key was made behind the user's back");
    std::fs::write(
        &key,
        b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let text = start_on(&state).await.unwrap_err().to_string();
    assert!(
        text.contains("is not a usable key") && text.contains("clients must then trust the new CA"),
        "{text}"
    );
    std::fs::write(&key, saved).unwrap();
    start_on(&state)
        .await
        .expect("the restored key works again");
}

/// The CA can sign only for loopback names (a critical name constraint) and is short-lived.
#[tokio::test]
async fn the_ca_is_name_constrained_and_short_lived() {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let emu = emulator().await;
    let der = x509_parser::pem::parse_x509_pem(emu.ca_cert_pem().as_bytes())
        .unwrap()
        .1
        .contents;
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let constraints = cert
        .name_constraints()
        .unwrap()
        .expect("a name constraints extension");
    assert!(constraints.critical);
    assert!(format!("{:?}", constraints.value).contains("localhost"));
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86400;
    assert!(days <= 367, "valid for {days} days");
}

/// A truncated `.pfx` is rebuilt from its `.pem` at start (same key and certificate).
#[tokio::test]
async fn a_truncated_pfx_is_rebuilt_from_its_pem() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (pem, pfx) = {
        let emu = start_on(&state).await.unwrap();
        emu.generated_certificate_paths(entra_emulator::well_known::CERTIFICATE_NAME)
            .unwrap()
    };
    let pem_before = std::fs::read(&pem).unwrap();
    std::fs::write(&pfx, b"").unwrap();
    drop(start_on(&state).await.unwrap());
    let bytes = std::fs::read(&pfx).unwrap();
    let store = p12_keystore::KeyStore::from_pkcs12(
        &bytes,
        entra_emulator::well_known::PFX_PASSWORD,
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .expect("the rebuilt .pfx opens");
    assert!(store.private_key_chain().is_some());
    assert_eq!(
        std::fs::read(&pem).unwrap(),
        pem_before,
        "the .pem is untouched"
    );
}
