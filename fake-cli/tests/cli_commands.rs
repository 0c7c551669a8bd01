//! The fake `az` and `azd` as programs: every sign-in kind, account commands, sign-out. The
//! environment is given to each child, never set on this process. The runtime has two workers:
//! one blocks on the child while the other serves the in-process emulator it talks to.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::{Command, Output};

use entra_emulator::{Emulator, KubernetesTokenRequest, well_known};

fn run(bin: &str, dir: &Path, emu: &Emulator, args: &[&str], extra: &[(&str, String)]) -> Output {
    let ready = emu.state_dir().join("cli-ready.json");
    emu.write_ready_file(&ready).unwrap();
    let mut command = Command::new(bin);
    command
        .args(args)
        .current_dir("/")
        .env("ENTRA_EMULATOR_READY_FILE", &ready)
        .env("AZURE_CONFIG_DIR", dir)
        .env("AZD_CONFIG_DIR", dir);
    for (k, v) in extra {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn token_appid(out: &Output, field: &str) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = json[field].as_str().unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    claims["appid"].as_str().unwrap().to_string()
}

const AZ: &str = env!("CARGO_BIN_EXE_az");
const AZD: &str = env!("CARGO_BIN_EXE_azd");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn az_signs_in_every_way_and_manages_the_account() {
    let emu = Emulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let get = |extra: &[(&str, String)]| {
        run(
            AZ,
            dir.path(),
            &emu,
            &[
                "account",
                "get-access-token",
                "--resource",
                "https://management.azure.com",
            ],
            extra,
        )
    };
    let t = well_known::TENANT_ID;
    // Not signed in.
    let out = get(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "ERROR: Please run 'az login' to setup account."
    );
    // Service principal with a secret, then a certificate.
    assert!(
        run(
            AZ,
            dir.path(),
            &emu,
            &[
                "login",
                "--service-principal",
                "-u",
                well_known::SECRET_APP_CLIENT_ID,
                "-p",
                well_known::CLIENT_SECRET,
                "--tenant",
                t
            ],
            &[]
        )
        .status
        .success()
    );
    assert_eq!(
        token_appid(&get(&[]), "accessToken"),
        well_known::SECRET_APP_CLIENT_ID
    );
    let (pem, _) = emu
        .generated_certificate_paths(well_known::CERTIFICATE_NAME)
        .unwrap();
    assert!(
        run(
            AZ,
            dir.path(),
            &emu,
            &[
                "login",
                "--service-principal",
                "-u",
                well_known::CERTIFICATE_APP_CLIENT_ID,
                "--certificate",
                pem.to_str().unwrap(),
                "--tenant",
                t
            ],
            &[]
        )
        .status
        .success()
    );
    assert_eq!(
        token_appid(&get(&[]), "accessToken"),
        well_known::CERTIFICATE_APP_CLIENT_ID
    );
    // A federated token.
    let sa = emu.mint_kubernetes_token(
        &KubernetesTokenRequest::from_subject(well_known::KUBERNETES_SUBJECT).unwrap(),
    );
    assert!(
        run(
            AZ,
            dir.path(),
            &emu,
            &[
                "login",
                "--service-principal",
                "-u",
                well_known::WORKLOAD_APP_CLIENT_ID,
                "--federated-token",
                &sa,
                "--tenant",
                t
            ],
            &[]
        )
        .status
        .success()
    );
    assert_eq!(
        token_appid(&get(&[]), "accessToken"),
        well_known::WORKLOAD_APP_CLIENT_ID
    );
    // The host's managed identity (IMDS at the emulator).
    let imds = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.http_url())];
    assert!(
        run(AZ, dir.path(), &emu, &["login", "--identity"], &imds)
            .status
            .success()
    );
    assert_eq!(
        token_appid(&get(&imds), "accessToken"),
        well_known::SYSTEM_ASSIGNED_CLIENT_ID
    );
    // A wrong secret: the Entra error on stderr, exit 1.
    let out = run(
        AZ,
        dir.path(),
        &emu,
        &[
            "login",
            "--service-principal",
            "-u",
            well_known::SECRET_APP_CLIENT_ID,
            "-p",
            "wrong",
            "--tenant",
            t,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("ERROR: AADSTS7000215"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The user; account commands; sign-out.
    assert!(run(AZ, dir.path(), &emu, &["login"], &[]).status.success());
    let show: serde_json::Value =
        serde_json::from_slice(&run(AZ, dir.path(), &emu, &["account", "show"], &[]).stdout)
            .unwrap();
    assert_eq!(show["user"]["name"], well_known::USER_PRINCIPAL_NAME);
    assert_eq!(show["id"], well_known::SUBSCRIPTION_ID);
    assert!(
        run(
            AZ,
            dir.path(),
            &emu,
            &[
                "account",
                "set",
                "--subscription",
                well_known::SUBSCRIPTION_ID
            ],
            &[]
        )
        .status
        .success()
    );
    assert!(
        !run(
            AZ,
            dir.path(),
            &emu,
            &["account", "set", "--subscription", "nope"],
            &[]
        )
        .status
        .success()
    );
    let list: serde_json::Value =
        serde_json::from_slice(&run(AZ, dir.path(), &emu, &["account", "list"], &[]).stdout)
            .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = run(
        AZ,
        dir.path(),
        &emu,
        &[
            "account",
            "get-access-token",
            "-o",
            "json",
            "--scope",
            "https://vault.azure.net/.default",
            "--tenant",
            t,
        ],
        &[],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["expires_on"].is_i64() && json["expiresOn"].as_str().unwrap().contains('.'),
        "{json}"
    );
    assert_eq!(json["tokenType"], "Bearer");
    assert!(run(AZ, dir.path(), &emu, &["logout"], &[]).status.success());
    assert_eq!(get(&[]).status.code(), Some(1));
    assert!(
        run(AZ, dir.path(), &emu, &["version"], &[])
            .status
            .success()
    );
    assert!(
        run(AZ, dir.path(), &emu, &["--version"], &[])
            .status
            .success()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azd_signs_in_as_the_user_or_a_service_principal() {
    let emu = Emulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = || {
        run(
            AZD,
            dir.path(),
            &emu,
            &[
                "auth",
                "token",
                "--output",
                "json",
                "--no-prompt",
                "--scope",
                "https://management.azure.com/.default",
            ],
            &[],
        )
    };
    let out = token();
    assert_eq!(out.status.code(), Some(1));
    let message: serde_json::Value = serde_json::from_slice(out.stderr.trim_ascii()).unwrap();
    assert_eq!(message["type"], "consoleMessage");
    assert!(
        run(AZD, dir.path(), &emu, &["auth", "login"], &[])
            .status
            .success()
    );
    let out = token();
    assert_eq!(
        token_appid(&out, "token"),
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expires = json["expiresOn"].as_str().unwrap();
    assert!(
        expires.ends_with('Z') && !expires.contains('.'),
        "{expires}"
    );
    assert!(
        run(
            AZD,
            dir.path(),
            &emu,
            &[
                "auth",
                "login",
                "--client-id",
                well_known::SECRET_APP_CLIENT_ID,
                "--client-secret",
                well_known::CLIENT_SECRET,
                "--tenant-id",
                well_known::TENANT_ID
            ],
            &[]
        )
        .status
        .success()
    );
    assert_eq!(
        token_appid(&token(), "token"),
        well_known::SECRET_APP_CLIENT_ID
    );
    assert!(
        run(AZD, dir.path(), &emu, &["auth", "logout"], &[])
            .status
            .success()
    );
    assert_eq!(token().status.code(), Some(1));
    let version = run(AZD, dir.path(), &emu, &["version"], &[]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("azd version "));
}
