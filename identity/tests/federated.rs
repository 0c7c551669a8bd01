//! WorkloadIdentityCredential, ClientAssertionCredential and AzurePipelinesCredential against
//! the in-process emulator. The environment is injected, never set process-wide.
// Tests prepare fixtures with the real file system and clock; only the code under test is
// restricted to `azure_identity::os`.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_identity::os::{ManualClock, MapEnv, Os};
use azure_identity::{
    AzurePipelinesCredential, AzurePipelinesCredentialOptions, ClientAssertion,
    ClientAssertionCredential, ClientAssertionCredentialOptions, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions, is_unavailable,
};
use entra_emulator::{Emulator, KubernetesTokenRequest, well_known};

const ARM: &str = "https://management.azure.com/.default";

fn assertion_options(emu: &Emulator, env: MapEnv) -> ClientAssertionCredentialOptions {
    ClientAssertionCredentialOptions {
        client_options: emu.client_options(),
        os: Os {
            env: Arc::new(env),
            ..Os::default()
        },
        ..Default::default()
    }
}

fn workload_env(file: &std::path::Path) -> MapEnv {
    MapEnv::from([
        ("AZURE_TENANT_ID", well_known::TENANT_ID.to_string()),
        (
            "AZURE_CLIENT_ID",
            well_known::WORKLOAD_APP_CLIENT_ID.to_string(),
        ),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
    ])
}

fn sa_token(emu: &Emulator) -> String {
    emu.mint_kubernetes_token(
        &KubernetesTokenRequest::from_subject(well_known::KUBERNETES_SUBJECT).unwrap(),
    )
}

#[tokio::test]
async fn workload_identity_reads_a_trimmed_token_file_from_the_environment() {
    let emu = Emulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{}\n", sa_token(&emu))).unwrap();
    let cred = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: assertion_options(&emu, workload_env(&file)),
        ..Default::default()
    }))
    .unwrap();
    cred.get_token(&[ARM], None).await.unwrap();
    let post = emu
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    assert_eq!(
        post.form_field("client_id"),
        Some(well_known::WORKLOAD_APP_CLIENT_ID)
    );
    assert_eq!(
        post.form_field("client_assertion_type"),
        Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    );
}

#[tokio::test]
async fn workload_identity_rereads_the_file_after_five_minutes() {
    let emu = Emulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "not-a-jwt").unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let mut options = assertion_options(&emu, workload_env(&file));
    options.os.clock = clock.clone();
    let cred = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: options,
        ..Default::default()
    }))
    .unwrap();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(err.to_string().contains("AADSTS50027"), "{err}");
    // Rotated on disk, but the last read is reused for five minutes.
    std::fs::write(&file, sa_token(&emu)).unwrap();
    clock.advance(time::Duration::minutes(4));
    assert!(cred.get_token(&[ARM], None).await.is_err());
    clock.advance(time::Duration::minutes(2));
    cred.get_token(&[ARM], None).await.unwrap();
}

#[tokio::test]
async fn workload_identity_configuration_errors_name_what_is_missing_and_are_unavailable() {
    let emu = Emulator::start().await.unwrap();
    let cases = [
        (
            MapEnv::new(),
            "no tenant ID specified. Check pod configuration or set tenant_id in the options",
        ),
        (
            MapEnv::from([("AZURE_TENANT_ID", well_known::TENANT_ID)]),
            "no token file specified. Check pod configuration or set token_file_path in the options",
        ),
        (
            MapEnv::from([
                ("AZURE_TENANT_ID", well_known::TENANT_ID),
                ("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent"),
            ]),
            "no client id specified. Check pod configuration or set client_id in the options",
        ),
    ];
    for (env, message) in cases {
        let err = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
            credential_options: assertion_options(&emu, env),
            ..Default::default()
        }))
        .unwrap_err();
        assert_eq!(err.to_string(), message);
        assert!(is_unavailable(&err));
    }
    // A configured credential whose file is missing fails (it is not "unavailable").
    let cred = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: assertion_options(
            &emu,
            workload_env(std::path::Path::new("/nonexistent/token")),
        ),
        ..Default::default()
    }))
    .unwrap();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("failed to read federated token from file /nonexistent/token"),
        "{err}"
    );
    assert!(err.to_string().contains("#workload"), "{err}");
    assert!(!is_unavailable(&err));
}

#[derive(Debug)]
struct Fixed(String);

#[async_trait::async_trait]
impl ClientAssertion for Fixed {
    async fn secret(
        &self,
        _: Option<azure_core::http::ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn client_assertion_credential_exchanges_the_callers_assertion() {
    let emu = Emulator::start().await.unwrap();
    let cred = ClientAssertionCredential::new(
        well_known::TENANT_ID.into(),
        well_known::WORKLOAD_APP_CLIENT_ID.into(),
        Fixed(sa_token(&emu)),
        Some(assertion_options(&emu, MapEnv::new())),
    )
    .unwrap();
    cred.get_token(&[ARM], None).await.unwrap();
    let wrong = ClientAssertionCredential::new(
        well_known::TENANT_ID.into(),
        well_known::WORKLOAD_APP_CLIENT_ID.into(),
        Fixed(emu.mint_kubernetes_token(&KubernetesTokenRequest::new("default", "other"))),
        Some(assertion_options(&emu, MapEnv::new())),
    )
    .unwrap();
    let err = wrong.get_token(&[ARM], None).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("ClientAssertionCredential authentication failed. AADSTS700213"),
        "{text}"
    );
    assert!(
        !text.contains("To troubleshoot"),
        "upstream has no link for this credential: {text}"
    );
}

fn pipelines_env(emu: &Emulator) -> MapEnv {
    let profile = emu.ready_info().profile("azure_pipelines").unwrap().clone();
    MapEnv::from([(
        "SYSTEM_OIDCREQUESTURI",
        profile["SYSTEM_OIDCREQUESTURI"].clone(),
    )])
}

fn pipelines(
    emu: &Emulator,
    token: &str,
    env: MapEnv,
) -> azure_core::Result<Arc<AzurePipelinesCredential>> {
    AzurePipelinesCredential::new(
        well_known::TENANT_ID.into(),
        well_known::PIPELINES_APP_CLIENT_ID.into(),
        well_known::SERVICE_CONNECTION_ID,
        token.to_string(),
        Some(AzurePipelinesCredentialOptions {
            credential_options: assertion_options(emu, env),
        }),
    )
}

#[tokio::test]
async fn pipelines_credential_gets_a_token_through_the_oidc_endpoint() {
    let emu = Emulator::start().await.unwrap();
    let cred = pipelines(&emu, well_known::SYSTEM_ACCESS_TOKEN, pipelines_env(&emu)).unwrap();
    cred.get_token(&[ARM], None).await.unwrap();
    let oidc = emu
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/oidctoken"))
        .unwrap();
    assert_eq!(oidc.query_param("api-version"), Some("7.1"));
    assert_eq!(
        oidc.query_param("serviceConnectionId"),
        Some(well_known::SERVICE_CONNECTION_ID)
    );
    assert_eq!(oidc.headers["x-tfs-fedauthredirect"], "Suppress");
}

#[tokio::test]
async fn pipelines_errors_quote_status_and_diagnostic_headers() {
    let emu = Emulator::start().await.unwrap();
    let cred = pipelines(&emu, "wrong-token", pipelines_env(&emu)).unwrap();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("AzurePipelinesCredential authentication failed. 401 response from the OIDC endpoint. Check service connection ID and pipeline configuration. Headers { x-msedge-ref: \""), "{text}");
    assert!(text.contains("x-vss-e2eid: \""), "{text}");
    assert!(text.ends_with("#apc"), "{text}");
    let inner = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<azure_core::Error>())
        .unwrap();
    assert!(
        matches!(inner.kind(), ErrorKind::HttpResponse { error_code: Some(c), .. } if c == "Unauthorized")
    );

    let err = pipelines(&emu, well_known::SYSTEM_ACCESS_TOKEN, MapEnv::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no value for environment variable SYSTEM_OIDCREQUESTURI. This should be set by Azure Pipelines"
    );
    let err = pipelines(
        &emu,
        well_known::SYSTEM_ACCESS_TOKEN,
        MapEnv::from([("SYSTEM_OIDCREQUESTURI", "not a url")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid URL for environment variable SYSTEM_OIDCREQUESTURI"
    );
    let err = pipelines(&emu, "", pipelines_env(&emu)).unwrap_err();
    assert_eq!(err.to_string(), "no system access token specified");
}
