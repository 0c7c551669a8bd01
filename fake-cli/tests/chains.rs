//! EnvironmentCredential, ChainedTokenCredential and DefaultAzureCredential against the
//! emulator and the fake CLIs: each source winning, each AZURE_TOKEN_CREDENTIALS value, a
//! configured-but-failing source stopping the chain, and a fast failure off Azure. "No IMDS" is
//! simulated only on loopback: a closed port, or a listener that accepts and never answers.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_identity::os::{MapEnv, Os};
use azure_identity::*;
use base64::Engine;
use entra_emulator::{Emulator, well_known};

const ARM: &str = "https://management.azure.com/.default";
const CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

fn appid(token: &azure_core::credentials::AccessToken) -> String {
    let payload = token.token.secret().split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["appid"].as_str().unwrap().to_string()
}

/// A loopback port with nothing listening.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

struct Setup {
    emu: Emulator,
}

impl Setup {
    async fn new() -> Self {
        Self {
            emu: Emulator::start().await.unwrap(),
        }
    }

    /// DAC options: `vars` as the environment (plus PATH to the fake CLIs, and a closed IMDS
    /// port unless `vars` names one), CLI children signed in unless `cli` says otherwise.
    fn options(
        &self,
        vars: &[(&str, String)],
        cli: &[(&str, &str)],
    ) -> DefaultAzureCredentialOptions {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("PATH".into(), support::bin_dir().display().to_string());
        env.insert("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), closed_port());
        for (k, v) in vars {
            env.insert((*k).to_string(), v.clone());
        }
        let mut child = self.emu.ready_info().profile("azure_cli").unwrap().clone();
        child.extend(
            self.emu
                .ready_info()
                .profile("azure_developer_cli")
                .unwrap()
                .clone(),
        );
        child.remove("PATH");
        for (k, v) in cli {
            child.insert((*k).to_string(), (*v).to_string());
        }
        let mut client_options = self.emu.client_options();
        client_options.cloud = None; // AZURE_AUTHORITY_HOST from `vars` decides.
        DefaultAzureCredentialOptions {
            client_options,
            executor: Some(Arc::new(support::EnvExecutor(child))),
            os: Os {
                env: Arc::new(env.into_iter().collect::<MapEnv>()),
                ..Os::default()
            },
            ..Default::default()
        }
    }

    fn authority(&self) -> (&'static str, String) {
        ("AZURE_AUTHORITY_HOST", self.emu.https_url())
    }

    fn secret_env(&self, secret: &str) -> Vec<(&'static str, String)> {
        vec![
            self.authority(),
            ("AZURE_TENANT_ID", well_known::TENANT_ID.into()),
            ("AZURE_CLIENT_ID", well_known::SECRET_APP_CLIENT_ID.into()),
            ("AZURE_CLIENT_SECRET", secret.into()),
        ]
    }
}

const NOT_SIGNED_IN: &[(&str, &str)] = &[
    ("FAKE_AZ_MODE", "not-logged-in"),
    ("FAKE_AZD_MODE", "not-logged-in"),
];

async fn token_from(options: DefaultAzureCredentialOptions) -> azure_core::Result<String> {
    let cred = DefaultAzureCredential::new(Some(options))?;
    cred.get_token(&[ARM], None).await.map(|t| appid(&t))
}

#[tokio::test]
async fn each_source_can_win() {
    let s = Setup::new().await;
    // Environment (a secret) comes first even though the CLIs are signed in.
    assert_eq!(
        token_from(s.options(&s.secret_env(well_known::CLIENT_SECRET), &[]))
            .await
            .unwrap(),
        well_known::SECRET_APP_CLIENT_ID
    );
    // Workload identity.
    let workload = [
        s.authority(),
        ("AZURE_TENANT_ID", well_known::TENANT_ID.into()),
        ("AZURE_CLIENT_ID", well_known::WORKLOAD_APP_CLIENT_ID.into()),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            s.emu.federated_token_path().display().to_string(),
        ),
    ];
    assert_eq!(
        token_from(s.options(&workload, &[])).await.unwrap(),
        well_known::WORKLOAD_APP_CLIENT_ID
    );
    // Managed identity, system-assigned, then user-assigned through AZURE_CLIENT_ID.
    let imds = ("AZURE_POD_IDENTITY_AUTHORITY_HOST", s.emu.http_url());
    assert_eq!(
        token_from(s.options(std::slice::from_ref(&imds), &[]))
            .await
            .unwrap(),
        well_known::SYSTEM_ASSIGNED_CLIENT_ID
    );
    let user = [
        imds.clone(),
        (
            "AZURE_CLIENT_ID",
            well_known::USER_ASSIGNED_CLIENT_ID.into(),
        ),
    ];
    assert_eq!(
        token_from(s.options(&user, &[])).await.unwrap(),
        well_known::USER_ASSIGNED_CLIENT_ID
    );
    // Off Azure: the Azure CLI.
    assert_eq!(
        token_from(s.options(&[], &[])).await.unwrap(),
        CLI_CLIENT_ID
    );
    // az not signed in: azd.
    let azd_only = [("FAKE_AZ_MODE", "not-logged-in")];
    let cred = DefaultAzureCredential::new(Some(s.options(&[], &azd_only))).unwrap();
    assert_eq!(
        appid(&cred.get_token(&[ARM], None).await.unwrap()),
        CLI_CLIENT_ID
    );
    assert!(format!("{cred:?}").contains("DefaultAzureCredential"));
}

#[tokio::test]
async fn azure_token_credentials_narrows_the_chain() {
    let s = Setup::new().await;
    // dev: the CLIs, even though a service principal is configured.
    let mut dev = s.secret_env(well_known::CLIENT_SECRET);
    dev.push(("AZURE_TOKEN_CREDENTIALS", "dev".into()));
    assert_eq!(
        token_from(s.options(&dev, &[])).await.unwrap(),
        CLI_CLIENT_ID
    );
    // prod: never a developer's sign-in; with nothing prod configured it fails, listing only
    // the prod sources.
    let err = token_from(s.options(&[("AZURE_TOKEN_CREDENTIALS", "prod".into())], &[]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("- EnvironmentCredential:") && text.contains("- ManagedIdentityCredential:"),
        "{text}"
    );
    assert!(!text.contains("AzureCliCredential"), "{text}");
    // A single credential by name.
    let mut only_env = s.secret_env(well_known::CLIENT_SECRET);
    only_env.push(("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential".into()));
    assert_eq!(
        token_from(s.options(&only_env, &[])).await.unwrap(),
        well_known::SECRET_APP_CLIENT_ID
    );
    for (name, expected) in [
        ("azureclicredential", CLI_CLIENT_ID),
        ("azuredeveloperclicredential", CLI_CLIENT_ID),
    ] {
        let vars = [("AZURE_TOKEN_CREDENTIALS", name.to_string())];
        assert_eq!(
            token_from(s.options(&vars, &[])).await.unwrap(),
            expected,
            "{name}"
        );
    }
    let workload = [
        s.authority(),
        ("AZURE_TENANT_ID", well_known::TENANT_ID.into()),
        ("AZURE_CLIENT_ID", well_known::WORKLOAD_APP_CLIENT_ID.into()),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            s.emu.federated_token_path().display().to_string(),
        ),
        (
            "AZURE_TOKEN_CREDENTIALS",
            "workloadidentitycredential".into(),
        ),
    ];
    assert_eq!(
        token_from(s.options(&workload, &[])).await.unwrap(),
        well_known::WORKLOAD_APP_CLIENT_ID
    );
    let mi = [
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", s.emu.http_url()),
        (
            "AZURE_TOKEN_CREDENTIALS",
            "managedidentitycredential".into(),
        ),
    ];
    assert_eq!(
        token_from(s.options(&mi, &[])).await.unwrap(),
        well_known::SYSTEM_ASSIGNED_CLIENT_ID
    );
    // Invalid, and required-but-missing.
    let err = DefaultAzureCredential::new(Some(
        s.options(&[("AZURE_TOKEN_CREDENTIALS", "laptop".into())], &[]),
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("Invalid value for AZURE_TOKEN_CREDENTIALS: 'laptop'"),
        "{err}"
    );
    let mut required = s.options(&[], &[]);
    required.require_azure_token_credentials = true;
    let err = DefaultAzureCredential::new(Some(required)).unwrap_err();
    assert!(
        err.to_string()
            .contains("AZURE_TOKEN_CREDENTIALS must be set"),
        "{err}"
    );
}

#[tokio::test]
async fn a_configured_source_that_fails_stops_the_chain() {
    let s = Setup::new().await;
    // A wrong secret must not fall through to the developer's az sign-in.
    let err = token_from(s.options(&s.secret_env("wrong-secret"), &[]))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("EnvironmentCredential is configured but failed"),
        "{text}"
    );
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(!is_unavailable(&err));
    assert!(
        !s.emu
            .requests()
            .iter()
            .any(|r| r.form_field("grant_type") == Some("refresh_token")),
        "az was not used"
    );
    // The same holds for an explicit ChainedTokenCredential.
    let os = Os {
        env: Arc::new(s.secret_env("wrong-secret").into_iter().collect::<MapEnv>()),
        ..Os::default()
    };
    let env = EnvironmentCredential::new(Some(EnvironmentCredentialOptions {
        client_options: s.emu.client_options(),
        os,
    }))
    .unwrap();
    let az = AzureCliCredential::new(Some(AzureCliCredentialOptions {
        executor: Some(support::executor(&s.emu, "azure_cli", &[])),
        os: support::os_with_path(None),
        ..Default::default()
    }))
    .unwrap();
    let named = vec![(
        "EnvironmentCredential".to_string(),
        env.clone() as Arc<dyn TokenCredential>,
    )];
    let chain = ChainedTokenCredential::new(vec![env, az], None).unwrap();
    let err = chain.get_token(&[ARM], None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ChainedTokenCredential: credential 1 is configured but failed")
            && text.contains("AADSTS7000215"),
        "{err}"
    );
    // Named members are named in the message.
    let chain = ChainedTokenCredential::with_names(named, None).unwrap();
    let err = chain.get_token(&[ARM], None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("ChainedTokenCredential: EnvironmentCredential is configured but failed"),
        "{err}"
    );
}

#[tokio::test]
async fn nothing_configured_and_no_imds_fails_fast_listing_every_attempt() {
    let s = Setup::new().await;
    // IMDS as a closed port, then as a listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    for imds in [closed_port(), silent_url] {
        let options = s.options(
            &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", imds.clone())],
            NOT_SIGNED_IN,
        );
        let started = Instant::now();
        let err = token_from(options).await.unwrap_err();
        let elapsed = started.elapsed();
        println!("nothing configured, IMDS at {imds}: failed in {elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
        let text = err.to_string();
        assert!(is_unavailable(&err));
        for name in [
            "EnvironmentCredential",
            "WorkloadIdentityCredential",
            "ManagedIdentityCredential",
            "AzureCliCredential",
            "AzureDeveloperCliCredential",
        ] {
            assert!(
                text.contains(&format!("- {name}:")),
                "{name} missing from: {text}"
            );
        }
        assert!(
            text.contains("AZURE_TENANT_ID") && text.contains("az login"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn environment_credential_names_what_is_missing_and_prefers_a_secret() {
    let s = Setup::new().await;
    let os = |vars: Vec<(&'static str, String)>| Os {
        env: Arc::new(vars.into_iter().collect::<MapEnv>()),
        ..Os::default()
    };
    let cred = EnvironmentCredential::new(Some(EnvironmentCredentialOptions {
        client_options: s.emu.client_options(),
        os: os(vec![("AZURE_TENANT_ID", well_known::TENANT_ID.into())]),
    }))
    .unwrap();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(is_unavailable(&err));
    assert_eq!(
        err.to_string(),
        "EnvironmentCredential is not configured: set AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"
    );
    // Both a secret and a certificate: the secret wins (the certificate path does not exist).
    let mut vars = s.secret_env(well_known::CLIENT_SECRET);
    vars.push(("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent.pem".into()));
    let cred = EnvironmentCredential::new(Some(EnvironmentCredentialOptions {
        client_options: s.emu.client_options(),
        os: os(vars),
    }))
    .unwrap();
    assert_eq!(
        appid(&cred.get_token(&[ARM], None).await.unwrap()),
        well_known::SECRET_APP_CLIENT_ID
    );
    // A certificate alone (PKCS#12 with its password).
    let (_, pfx) = s
        .emu
        .generated_certificate_paths(well_known::CERTIFICATE_NAME)
        .unwrap();
    let vars = vec![
        s.authority(),
        ("AZURE_TENANT_ID", well_known::TENANT_ID.into()),
        (
            "AZURE_CLIENT_ID",
            well_known::CERTIFICATE_APP_CLIENT_ID.into(),
        ),
        ("AZURE_CLIENT_CERTIFICATE_PATH", pfx.display().to_string()),
        (
            "AZURE_CLIENT_CERTIFICATE_PASSWORD",
            well_known::PFX_PASSWORD.into(),
        ),
    ];
    let cred = EnvironmentCredential::new(Some(EnvironmentCredentialOptions {
        client_options: s.emu.client_options(),
        os: os(vars),
    }))
    .unwrap();
    assert_eq!(
        appid(&cred.get_token(&[ARM], None).await.unwrap()),
        well_known::CERTIFICATE_APP_CLIENT_ID
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imds_faults_make_the_chain_move_on_to_the_developer_tools() {
    use entra_emulator::{Endpoint, Fault, FaultAction};
    let s = Setup::new().await;
    let imds = [("AZURE_POD_IDENTITY_AUTHORITY_HOST", s.emu.http_url())];
    // Docker Desktop's 403 "unreachable": the probe says no IMDS here.
    let id = s
        .emu
        .add_fault(Fault::new(FaultAction::Unreachable).on(Endpoint::Imds))
        .unwrap();
    assert_eq!(
        token_from(s.options(&imds, &[])).await.unwrap(),
        CLI_CLIENT_ID
    );
    s.emu.remove_fault(id);
    // An IMDS that never answers: the 1 s probe gives up and the chain moves on.
    s.emu
        .add_fault(Fault::new(FaultAction::Hang { secs: None }).on(Endpoint::Imds))
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        token_from(s.options(&imds, &[])).await.unwrap(),
        CLI_CLIENT_ID
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let probes: Vec<_> = s
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.path == "/metadata/identity/oauth2/token")
        .collect();
    assert_eq!(probes.len(), 2, "one probe per chain, no token request");
    assert!(probes.iter().all(|r| r.fault.is_some()));
}
