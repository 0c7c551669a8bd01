//! The `entra-emulator` binary: ready file, `env`, `print-config`, persistence across restarts.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use entra_emulator::{ReadyInfo, well_known};

mod common;

use common::BIN;

struct Running {
    child: Child,
    ready: ReadyInfo,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on free ports with `state`; reaped by `Running`'s `Drop`.
fn spawn(state: &Path, extra: &[&str]) -> Running {
    let ready_path = state.join("custom-ready.json");
    let _ = std::fs::remove_file(&ready_path);
    let mut child = common::binary(state)
        .arg("--ready-file")
        .arg(&ready_path)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let ready = common::wait_ready(&mut child, &ready_path);
    Running { child, ready }
}

fn client(ready: &ReadyInfo) -> reqwest::blocking::Client {
    let ca = std::fs::read(&ready.ca_cert_path).unwrap();
    reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn secret_token(ready: &ReadyInfo) -> reqwest::blocking::Response {
    let p = ready.profile("client_secret").unwrap();
    client(ready)
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            p["AZURE_AUTHORITY_HOST"], p["AZURE_TENANT_ID"]
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", p["AZURE_CLIENT_ID"].as_str()),
            ("client_secret", p["AZURE_CLIENT_SECRET"].as_str()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .unwrap()
}

#[test]
fn ready_file_profiles_drive_a_token_request_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = spawn(dir.path(), &[]);
    let ready = first.ready.clone();
    assert!(ready.https_url.starts_with("https://127.0.0.1:"));
    assert!(ready.http_url.starts_with("http://127.0.0.1:"));
    for profile in [
        "client_secret",
        "client_certificate",
        "client_certificate_pfx",
        "workload_identity",
        "azure_pipelines",
    ] {
        let vars = ready
            .profile(profile)
            .unwrap_or_else(|| panic!("profile {profile}"));
        for ca_var in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"] {
            assert_eq!(
                Path::new(&vars[ca_var]),
                ready.ca_cert_path,
                "{profile} {ca_var}"
            );
        }
    }
    let secret = ready.profile("client_secret").unwrap();
    assert_eq!(secret["AZURE_CLIENT_SECRET"], well_known::CLIENT_SECRET);
    let pfx = ready.profile("client_certificate_pfx").unwrap();
    assert!(pfx["AZURE_CLIENT_CERTIFICATE_PATH"].ends_with(".pfx"));
    assert_eq!(
        pfx["AZURE_CLIENT_CERTIFICATE_PASSWORD"],
        well_known::PFX_PASSWORD
    );
    let token_file = &ready.profile("workload_identity").unwrap()["AZURE_FEDERATED_TOKEN_FILE"];
    let federated = std::fs::read_to_string(token_file).unwrap();
    assert_eq!(
        federated.trim(),
        federated,
        "token file has no surrounding whitespace"
    );
    assert_eq!(federated.split('.').count(), 3);

    assert_eq!(secret_token(&ready).status(), 200);
    let ca = std::fs::read(&ready.ca_cert_path).unwrap();
    drop(first);

    let second = spawn(dir.path(), &[]);
    assert_eq!(
        std::fs::read(&second.ready.ca_cert_path).unwrap(),
        ca,
        "same CA after restart"
    );
    assert_eq!(secret_token(&second.ready).status(), 200);

    // `env PROFILE` prints export lines from the state directory's ready file.
    let output = Command::new(BIN)
        .args(["--state-dir"])
        .arg(dir.path())
        .args(["env", "client_secret"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "export AZURE_CLIENT_ID='{}'",
            well_known::SECRET_APP_CLIENT_ID
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "export AZURE_AUTHORITY_HOST='{}'",
            second.ready.https_url
        )),
        "{text}"
    );

    let unknown = Command::new(BIN)
        .args(["--state-dir"])
        .arg(dir.path())
        .args(["env", "nope"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let stderr = String::from_utf8(unknown.stderr).unwrap();
    assert!(
        stderr.contains("unknown profile 'nope'") && stderr.contains("client_secret"),
        "{stderr}"
    );
}

#[test]
fn custom_config_file_replaces_the_seed_and_print_config_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seed.toml");
    std::fs::write(
        &config,
        r#"
[[tenants]]
id = "abababab-abab-abab-abab-abababababab"
domains = ["custom.example"]

[[applications]]
tenant = "abababab-abab-abab-abab-abababababab"
client_id = "cdcdcdcd-cdcd-cdcd-cdcd-cdcdcdcdcdcd"
secrets = [{ value = "from-config" }]
"#,
    )
    .unwrap();
    let printed = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("print-config")
        .output()
        .unwrap();
    assert!(printed.status.success());
    let text = String::from_utf8(printed.stdout).unwrap();
    assert!(
        text.contains("custom.example") && text.contains("token_lifetime_secs"),
        "{text}"
    );

    let running = spawn(dir.path(), &["--config", config.to_str().unwrap()]);
    let secret = running.ready.profile("client_secret").unwrap();
    assert_eq!(
        secret["AZURE_CLIENT_ID"],
        "cdcdcdcd-cdcd-cdcd-cdcd-cdcdcdcdcdcd"
    );
    assert_eq!(secret_token(&running.ready).status(), 200);
    assert!(running.ready.profile("client_certificate").is_none());
}

#[test]
fn a_bad_config_fails_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[[tenants]]\nid = \"not-a-guid\"\n").unwrap();
    let output = common::binary(dir.path())
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("not a GUID") && stderr.contains("bad.toml"),
        "{stderr}"
    );
}

#[test]
fn rotate_key_subcommand_changes_the_signing_key_of_a_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let rotate = || {
        let out = common::binary(dir.path())
            .arg("rotate-key")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let first = rotate();
    let second = rotate();
    assert!(!first.is_empty());
    assert_ne!(first, second);
}

#[test]
fn fault_flags_apply_from_the_start_and_a_bad_one_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let running = spawn(
        dir.path(),
        &[
            "--fault",
            "throttle@token,retry_after=3,times=1",
            "--fault",
            r#"{"match":{"endpoint":"jwks"},"action":{"kind":"status","status":502}}"#,
        ],
    );
    let first = secret_token(&running.ready);
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "3");
    assert_eq!(secret_token(&running.ready).status(), 200);
    let jwks = client(&running.ready)
        .get(format!(
            "{}/{}/discovery/v2.0/keys",
            running.ready.https_url,
            well_known::TENANT_ID
        ))
        .send()
        .unwrap();
    assert_eq!(jwks.status(), 502);

    let output = common::binary(&dir.path().join("other"))
        .args(["--fault", "explode@token"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("explode"), "{stderr}");
}
