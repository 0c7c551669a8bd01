//! Upstream `azure_identity` 1.0.0 against the emulator (and, built by
//! `tests/real-clients/rust-dropin`, this repository's crate in its place through
//! `[patch.crates-io]`, the same source). Each case runs in a child process
//! (this same binary with `--case NAME`) whose environment is exactly one ready-file profile,
//! because upstream reads `AZURE_AUTHORITY_HOST`, `SSL_CERT_FILE` and the managed-identity
//! variables from the process environment. Ends with "N passed, M failed".

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzurePipelinesCredential, ManagedIdentityCredential, WorkloadIdentityCredential,
};

const ARM: &str = "https://management.azure.com/.default";

/// (case, profile, expected: "token" or an error fragment)
const CASES: &[(&str, &str, &str)] = &[
    ("client_secret", "client_secret", "token"),
    ("client_secret_wrong_secret", "client_secret", "AADSTS7000215"),
    ("workload_identity", "workload_identity", "token"),
    ("azure_pipelines", "azure_pipelines", "token"),
    ("managed_identity_imds_via_http_proxy", "imds", "token"),
    ("managed_identity_app_service", "app_service", "token"),
    ("key_vault_secret_client", "client_secret", "token"),
];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

async fn credential(case: &str) -> azure_core::Result<Arc<dyn TokenCredential>> {
    Ok(match case {
        "client_secret" | "client_secret_wrong_secret" => {
            let secret = if case == "client_secret" { env("AZURE_CLIENT_SECRET") } else { "wrong".into() };
            azure_identity::ClientSecretCredential::new(&env("AZURE_TENANT_ID"), env("AZURE_CLIENT_ID"), secret.into(), None)?
        }
        "workload_identity" => WorkloadIdentityCredential::new(None)?,
        "azure_pipelines" => AzurePipelinesCredential::new(
            env("AZURESUBSCRIPTION_TENANT_ID"),
            env("AZURESUBSCRIPTION_CLIENT_ID"),
            &env("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
            env("SYSTEM_ACCESSTOKEN"),
            None,
        )?,
        _ => ManagedIdentityCredential::new(None)?,
    })
}

/// The Key Vault client from crates.io: set and get a secret on `AZURE_KEYVAULT_URL`.
async fn key_vault(credential: Arc<dyn TokenCredential>) -> azure_core::Result<String> {
    use azure_security_keyvault_secrets::models::SetSecretParameters;
    use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
    let options = SecretClientOptions {
        // The vault listens on 127.0.0.1, not on *.vault.azure.net.
        verify_challenge_resource: Some(false),
        ..Default::default()
    };
    let client = SecretClient::new(&env("AZURE_KEYVAULT_URL"), credential, Some(options))?;
    let parameters = SetSecretParameters {
        value: Some("from-rust".into()),
        ..Default::default()
    };
    client.set_secret("rust-check", parameters.try_into()?, None).await?;
    let secret = client.get_secret("rust-check", None).await?.into_model()?;
    Ok(format!("OK secret {:?}", secret.value.unwrap_or_default()))
}

async fn run_case(case: &str) {
    if case == "key_vault_secret_client" {
        let outcome = match credential("client_secret").await {
            Ok(c) => key_vault(c).await.unwrap_or_else(|e| format!("ERR {e}")),
            Err(e) => format!("ERR {e}"),
        };
        println!("{}", outcome.replace('\n', " "));
        return;
    }
    let outcome = match credential(case).await {
        Ok(c) => match c.get_token(&[ARM], None).await {
            Ok(t) => format!("OK {} bytes", t.token.secret().len()),
            Err(e) => format!("ERR {e}"),
        },
        Err(e) => format!("ERR {e}"),
    };
    println!("{}", outcome.replace('\n', " "));
}

fn start_emulator(binary: &str, dir: &std::path::Path) -> (std::process::Child, serde_json::Value) {
    let ready = dir.join("ready.json");
    let child = Command::new(binary)
        .args(["--https-port", "0", "--http-port", "0", "--service-fabric-port", "0", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("emulator starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && let Ok(json) = serde_json::from_str(&text)
        {
            return (child, json);
        }
        assert!(Instant::now() < deadline, "emulator not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--case") {
        run_case(&args[i + 1]).await;
        return;
    }
    let binary = args
        .iter()
        .position(|a| a == "--emulator")
        .map(|i| args[i + 1].clone())
        .expect("--emulator PATH");
    let dir = std::env::temp_dir().join(format!("emu-rs-{}", std::process::id()));
    let (mut child, ready) = start_emulator(&binary, &dir);
    let which = if env!("CARGO_PKG_NAME") == "dropin-check" {
        "this repository's azure_identity (through [patch.crates-io])"
    } else {
        "upstream azure_identity 1.0.0"
    };
    println!("{which} against {}", ready["https_url"]);
    let (mut passed, mut failed) = (0, 0);
    for (case, profile, expect) in CASES {
        let vars: BTreeMap<String, String> = serde_json::from_value(ready["profiles"][profile].clone()).unwrap_or_default();
        let started = Instant::now();
        let output = Command::new(&args[0])
            .args(["--case", case])
            .env_clear()
            .env("PATH", env("PATH"))
            .envs(&vars)
            .output()
            .expect("child runs");
        let line = String::from_utf8_lossy(&output.stdout).trim().to_string();
        let good = if *expect == "token" { line.starts_with("OK") } else { line.starts_with("ERR") && line.contains(expect) };
        if good { passed += 1 } else { failed += 1 }
        println!("{} {case:40} {:5.2}s  {line}", if good { "PASS" } else { "FAIL" }, started.elapsed().as_secs_f64());
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
