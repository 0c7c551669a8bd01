//! The persistent token cache across languages: a user signed in by Python `azure-identity`
//! (`DeviceCodeCredential` with `TokenCachePersistenceOptions(allow_unencrypted_storage=True)`)
//! gets a token from this crate's credential, given the same cache name and the
//! `AuthenticationRecord`, with no further sign-in — the emulator sees a refresh-token grant
//! and no device code — and the other way round. Also: the file is MSAL's JSON, other entries
//! survive, and a corrupt file is a warning and an empty cache.
//!
//! Needs Python with `azure-identity` (`ENTRA_TEST_PYTHON`, else `python3` if it imports it).
//! Without one the cross-language tests say so and pass locally; under CI (`CI` set) they fail.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::os::{MapEnv, Os};
use azure_identity::{
    AuthenticationRecord, DeviceCodeCredential, DeviceCodeCredentialOptions, DeviceCodeInfo,
    TokenCachePersistenceOptions,
};
use entra_emulator::{Emulator, Seed, well_known};

const ARM: &str = "https://management.azure.com/.default";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/real-clients/python/persistent_cache.py"
);

fn python() -> Option<String> {
    let candidate = std::env::var("ENTRA_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&candidate)
        .args(["-c", "import azure.identity, jwt"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide Python with azure-identity (ENTRA_TEST_PYTHON)"
    );
    eprintln!("skipped: no Python with azure-identity (set ENTRA_TEST_PYTHON)");
    None
}

async fn emulator() -> Emulator {
    let emu = Emulator::builder()
        .https_port(0)
        .http_port(0)
        .service_fabric_port(0)
        .start()
        .await
        .unwrap();
    let mut seed = Seed::default_seed();
    seed.sign_in.auto_approve_device_codes = Some(well_known::USER_PRINCIPAL_NAME.into());
    seed.sign_in.device_code_interval_secs = 0;
    emu.apply_seed(seed).unwrap();
    emu
}

/// Runs the Python side to completion, off the runtime's thread (the emulator answers it).
async fn run_python(python: &str, emu: &Emulator, home: &Path, args: &[&str]) -> String {
    let mut command = Command::new(python);
    command
        .arg(SCRIPT)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("REQUESTS_CA_BUNDLE", emu.ca_cert_path())
        .env("SSL_CERT_FILE", emu.ca_cert_path())
        .env("NO_PROXY", "127.0.0.1,localhost");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn credential(
    emu: &Emulator,
    home: &Path,
    record: Option<AuthenticationRecord>,
    name: &str,
) -> Arc<DeviceCodeCredential> {
    DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
        authentication_record: record.clone(),
        disable_automatic_authentication: record.is_some(),
        user_prompt: Some(Arc::new(|_: &DeviceCodeInfo| {})),
        token_cache_persistence_options: Some(TokenCachePersistenceOptions {
            name: name.into(),
            allow_unencrypted_storage: true,
        }),
        client_options: emu.client_options(),
        os: Os {
            env: Arc::new(MapEnv::from([("HOME", home.display().to_string())])),
            ..Os::default()
        },
        ..Default::default()
    }))
    .unwrap()
}

fn grant_types(emu: &Emulator) -> Vec<String> {
    emu.requests()
        .iter()
        .filter_map(|r| r.form_field("grant_type").map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_python_sign_in_is_used_silently_here() {
    let Some(python) = python() else { return };
    let emu = emulator().await;
    let home = tempfile::tempdir().unwrap();
    let record = run_python(
        &python,
        &emu,
        home.path(),
        &["sign-in", &emu.https_url(), "py-to-rust"],
    )
    .await;
    let record = AuthenticationRecord::deserialize(record.trim()).unwrap();
    assert_eq!(record.username, well_known::USER_PRINCIPAL_NAME);
    emu.clear_requests();
    let token = credential(&emu, home.path(), Some(record), "py-to-rust")
        .get_token(&[well_known::MIDDLE_TIER_SCOPE], None)
        .await
        .unwrap();
    assert!(!token.token.secret().is_empty());
    assert_eq!(
        grant_types(&emu),
        ["refresh_token"],
        "silent: a refresh, no device code"
    );
}

#[tokio::test]
async fn a_sign_in_here_is_used_silently_by_python() {
    let Some(python) = python() else { return };
    let emu = emulator().await;
    let home = tempfile::tempdir().unwrap();
    let signed_in = credential(&emu, home.path(), None, "rust-to-py");
    let record = signed_in.authenticate(&[ARM], None).await.unwrap();
    let file = home.path().join("record.json");
    std::fs::write(&file, record.serialize()).unwrap();
    emu.clear_requests();
    let out = run_python(
        &python,
        &emu,
        home.path(),
        &[
            "silent",
            &emu.https_url(),
            "rust-to-py",
            &file.display().to_string(),
            well_known::MIDDLE_TIER_SCOPE,
        ],
    )
    .await;
    assert!(out.contains(well_known::USER_PRINCIPAL_NAME), "{out}");
    assert!(
        grant_types(&emu).iter().all(|g| g == "refresh_token"),
        "{:?}",
        grant_types(&emu)
    );
}

#[tokio::test]
async fn the_file_is_msal_json_keeps_other_entries_and_survives_corruption() {
    let emu = emulator().await;
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join(".IdentityService/shape.nocae");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Corrupt: a warning and an empty cache, then a sign-in works and rewrites it.
    std::fs::write(&path, "{ not json").unwrap();
    let first = credential(&emu, home.path(), None, "shape");
    first.get_token(&[ARM], None).await.unwrap();
    let cache: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for section in [
        "AccessToken",
        "RefreshToken",
        "IdToken",
        "Account",
        "AppMetadata",
    ] {
        assert!(
            cache[section].as_object().is_some_and(|m| !m.is_empty()),
            "{section}: {cache}"
        );
    }
    let record = first.authentication_record().unwrap();
    // MSAL's key: home account, host without port, type, client, no realm, sorted scopes.
    let host = record.authority.split(':').next().unwrap();
    let rt_key = format!(
        "{}-{host}-refreshtoken-{}--https://management.azure.com/.default offline_access openid profile",
        record.home_account_id, record.client_id
    );
    assert!(
        cache["RefreshToken"].get(&rt_key).is_some(),
        "{rt_key} in {}",
        cache["RefreshToken"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Another program's entry survives this credential's next write.
    let mut edited = cache.clone();
    edited["AppMetadata"]["appmetadata-elsewhere-someone"] =
        serde_json::json!({"client_id": "someone", "environment": "elsewhere"});
    std::fs::write(&path, serde_json::to_vec(&edited).unwrap()).unwrap();
    first
        .get_token(&[well_known::MIDDLE_TIER_SCOPE], None)
        .await
        .unwrap();
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(
        after["AppMetadata"]
            .get("appmetadata-elsewhere-someone")
            .is_some()
    );
    assert!(
        !home
            .path()
            .join(".IdentityService/shape.nocae.lockfile")
            .exists(),
        "the lock is released"
    );
    // Without allow_unencrypted_storage: a clear refusal.
    let refused = DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
        token_cache_persistence_options: Some(TokenCachePersistenceOptions::default()),
        ..Default::default()
    }))
    .unwrap_err()
    .to_string();
    assert!(refused.contains("allow_unencrypted_storage"), "{refused}");
}
