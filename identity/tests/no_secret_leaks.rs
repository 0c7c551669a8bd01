//! No secret (client secret, private key, assertion, access token, Pipelines system access
//! token) appears in Debug output, errors, or anything logged through tracing at any level.
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use azure_core::credentials::TokenCredential;
use azure_identity::os::{MapEnv, Os};
use azure_identity::*;
use entra_emulator::{Emulator, KubernetesTokenRequest, well_known};

const ARM: &str = "https://management.azure.com/.default";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything traced at any level while the guard lives, into the returned buffer.
fn capture_traces() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (capture, tracing::subscriber::set_default(subscriber))
}

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

#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_debug_errors_or_logs() {
    let (capture, _guard) = capture_traces();

    let emu = Emulator::start().await.unwrap();
    let mut secrets: Vec<String> = vec![
        well_known::CLIENT_SECRET.into(),
        well_known::SYSTEM_ACCESS_TOKEN.into(),
        "wrong-but-still-secret".into(),
    ];
    let mut texts: Vec<String> = Vec::new();

    // Client secret, right and wrong.
    for secret in [well_known::CLIENT_SECRET, "wrong-but-still-secret"] {
        let cred = ClientSecretCredential::new(
            well_known::TENANT_ID,
            well_known::SECRET_APP_CLIENT_ID.into(),
            secret.to_string().into(),
            Some(ClientSecretCredentialOptions {
                client_options: emu.client_options(),
                ..Default::default()
            }),
        )
        .unwrap();
        texts.push(format!("{cred:?}"));
        match cred.get_token(&[ARM], None).await {
            Ok(t) => {
                texts.push(format!("{t:?}"));
                secrets.push(t.token.secret().to_string());
            }
            Err(e) => texts.push(format!("{e} {e:?}")),
        }
    }

    // Certificate: the key's PEM body must not leak.
    let (pem_path, _) = emu
        .generated_certificate_paths(well_known::CERTIFICATE_NAME)
        .unwrap();
    let pem = std::fs::read_to_string(pem_path).unwrap();
    let key_body: String = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    secrets.push(key_body);
    let options = ClientCertificateCredentialOptions {
        client_options: emu.client_options(),
        ..Default::default()
    };
    texts.push(format!("{options:?}"));
    let cred = ClientCertificateCredential::new(
        well_known::TENANT_ID.into(),
        well_known::CERTIFICATE_APP_CLIENT_ID.into(),
        pem.into_bytes().into(),
        Some(options),
    )
    .unwrap();
    texts.push(format!("{cred:?}"));
    secrets.push(
        cred.get_token(&[ARM], None)
            .await
            .unwrap()
            .token
            .secret()
            .to_string(),
    );
    // Every assertion this credential signs starts with the same header; it must not appear.
    secrets.push("eyJhbGciOiJQUzI1NiIs".into());

    // Workload identity: the service-account token is an assertion.
    let sa = emu.mint_kubernetes_token(
        &KubernetesTokenRequest::from_subject(well_known::KUBERNETES_SUBJECT).unwrap(),
    );
    secrets.push(sa.clone());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, &sa).unwrap();
    let env = MapEnv::from([
        ("AZURE_TENANT_ID", well_known::TENANT_ID.to_string()),
        (
            "AZURE_CLIENT_ID",
            well_known::WORKLOAD_APP_CLIENT_ID.to_string(),
        ),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
    ]);
    let cred = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: assertion_options(&emu, env),
        ..Default::default()
    }))
    .unwrap();
    texts.push(format!("{cred:?}"));
    secrets.push(
        cred.get_token(&[ARM], None)
            .await
            .unwrap()
            .token
            .secret()
            .to_string(),
    );

    // Pipelines: the system access token, right and wrong.
    let uri = emu.ready_info().profile("azure_pipelines").unwrap()["SYSTEM_OIDCREQUESTURI"].clone();
    for token in [well_known::SYSTEM_ACCESS_TOKEN, "wrong-but-still-secret"] {
        let cred = AzurePipelinesCredential::new(
            well_known::TENANT_ID.into(),
            well_known::PIPELINES_APP_CLIENT_ID.into(),
            well_known::SERVICE_CONNECTION_ID,
            token.to_string(),
            Some(AzurePipelinesCredentialOptions {
                credential_options: assertion_options(
                    &emu,
                    MapEnv::from([("SYSTEM_OIDCREQUESTURI", uri.clone())]),
                ),
            }),
        )
        .unwrap();
        texts.push(format!("{cred:?}"));
        match cred.get_token(&[ARM], None).await {
            Ok(t) => secrets.push(t.token.secret().to_string()),
            Err(e) => texts.push(format!("{e} {e:?}")),
        }
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("token cache miss"),
        "tracing was captured: {logs}"
    );
    texts.push(logs);
    for text in &texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked ({}…) into: {text}",
                &secret[..secret.len().min(12)]
            );
        }
    }
}

/// The user credentials: access tokens, an authorization code and PKCE verifier, the web app's
/// and middle tier's secrets, and an on-behalf-of user assertion stay out of Debug, errors and
/// logs — on success and on failure.
#[tokio::test(flavor = "current_thread")]
async fn user_credential_secrets_never_reach_debug_errors_or_logs() {
    let (capture, _guard) = capture_traces();

    let emu = Emulator::start().await.unwrap();
    let mut seed = entra_emulator::Seed::default_seed();
    seed.sign_in.auto_approve_device_codes = Some(well_known::USER_PRINCIPAL_NAME.into());
    seed.sign_in.device_code_interval_secs = 0;
    emu.apply_seed(seed).unwrap();
    let mut secrets: Vec<String> = vec![
        well_known::WEB_APP_SECRET.into(),
        well_known::MIDDLE_TIER_SECRET.into(),
        "a-made-up-authorization-code".into(),
        "a-made-up-code-verifier-value".into(),
    ];
    let mut texts: Vec<String> = Vec::new();

    let device = DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
        client_options: emu.client_options(),
        user_prompt: Some(Arc::new(|_: &DeviceCodeInfo| {})),
        ..Default::default()
    }))
    .unwrap();
    for scope in [well_known::MIDDLE_TIER_SCOPE, ARM] {
        let token = device.get_token(&[scope], None).await.unwrap();
        secrets.push(token.token.secret().to_string());
    }
    texts.push(format!("{device:?} {:?}", device.authentication_record()));

    // On-behalf-of with the user's token, right and wrong client secret.
    let assertion = secrets[4].clone();
    for secret in [well_known::MIDDLE_TIER_SECRET, "a-wrong-middle-tier-secret"] {
        secrets.push(secret.into());
        let obo = OnBehalfOfCredential::new(
            well_known::TENANT_ID,
            well_known::MIDDLE_TIER_CLIENT_ID.into(),
            assertion.clone().into(),
            secret.to_string().into(),
            Some(OnBehalfOfCredentialOptions {
                client_options: emu.client_options(),
                ..Default::default()
            }),
        )
        .unwrap();
        texts.push(format!("{obo:?}"));
        match obo.get_token(&[ARM], None).await {
            Ok(t) => secrets.push(t.token.secret().to_string()),
            Err(e) => texts.push(format!("{e} {e:?}")),
        }
    }

    // An authorization code that does not redeem, with a verifier and a secret.
    let options = AuthorizationCodeCredentialOptions {
        client_secret: Some(well_known::WEB_APP_SECRET.into()),
        code_verifier: Some("a-made-up-code-verifier-value".into()),
        client_options: emu.client_options(),
        ..Default::default()
    };
    texts.push(format!("{options:?}"));
    let code = AuthorizationCodeCredential::new(
        well_known::TENANT_ID,
        well_known::WEB_APP_CLIENT_ID.into(),
        "a-made-up-authorization-code".to_string().into(),
        "http://localhost/callback".into(),
        Some(options),
    )
    .unwrap();
    texts.push(format!("{code:?}"));
    let e = code.get_token(&[ARM], None).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("token cache miss"), "tracing was captured");
    texts.push(logs);
    for text in &texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked ({}…) into: {text}",
                &secret[..secret.len().min(12)]
            );
        }
    }
}

/// Continuous access evaluation: the refused token, the token that replaced it, the claims
/// challenge's tokens and the vault's secret values stay out of Debug and logs (the policy's
/// and the emulator's).
#[tokio::test(flavor = "current_thread")]
async fn cae_tokens_and_vault_secrets_never_reach_debug_or_logs() {
    use azure_core::http::policies::Policy;
    use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
    use azure_core::http::{Context, Method, Pipeline, Request, Url};

    let (capture, _guard) = capture_traces();

    let emu = Emulator::start().await.unwrap();
    let vault_scope = "https://vault.azure.net/.default";
    let cred: Arc<dyn TokenCredential> = ClientSecretCredential::new(
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID.into(),
        well_known::CLIENT_SECRET.into(),
        Some(ClientSecretCredentialOptions {
            client_options: emu.client_options(),
            ..Default::default()
        }),
    )
    .unwrap();
    let mut tokens = Vec::new();
    let first = cred.get_token(&[vault_scope], None).await.unwrap();
    tokens.push(first.token.secret().to_string());
    let vault = emu.key_vault_url(well_known::KEY_VAULT_NAME).unwrap();
    let value = "the-value-of-a-vault-secret";
    emu.http_client()
        .put(format!("{vault}/secrets/leak-check?api-version=7.5"))
        .bearer_auth(first.token.secret())
        .json(&serde_json::json!({ "value": value }))
        .send()
        .await
        .unwrap();

    // The client's own policy asks for CAE tokens through the per-call half.
    let mut options = emu.client_options();
    options.cloud = None;
    ContinuousAccessPolicy::install(cred.clone(), &mut options);
    let policy = options.per_try_policies.last().cloned().unwrap();
    let auth: Arc<dyn Policy> = Arc::new(BearerTokenAuthorizationPolicy::new(
        cred.clone(),
        [vault_scope],
    ));
    let pipeline = Pipeline::new(None, None, options, Vec::new(), vec![auth], None);
    let url = Url::parse(&format!("{vault}/secrets/leak-check?api-version=7.5")).unwrap();
    pipeline
        .send(
            &Context::new(),
            &mut Request::new(url.clone(), Method::Get),
            None,
        )
        .await
        .unwrap();
    emu.revoke(well_known::SECRET_APP_CLIENT_ID).unwrap();
    pipeline
        .send(&Context::new(), &mut Request::new(url, Method::Get), None)
        .await
        .unwrap();
    let extras = TokenRequestExtras {
        enable_cae: true,
        ..Default::default()
    };
    let mut cae = azure_core::credentials::TokenRequestOptions::default();
    cae.method_options.context.insert(extras);
    tokens.push(
        cred.get_token(&[vault_scope], Some(cae))
            .await
            .unwrap()
            .token
            .secret()
            .to_string(),
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let texts = [
        format!("{policy:?}"),
        format!("{emu:?}"),
        format!("{:?}", emu.requests()),
        logs,
    ];
    assert!(texts[0].contains("replaced_tokens: 1"), "{}", texts[0]);
    for text in &texts {
        for secret in tokens
            .iter()
            .map(String::as_str)
            .chain([value, well_known::CLIENT_SECRET])
        {
            assert!(
                !text.contains(secret),
                "a secret leaked ({}…) into: {text}",
                &secret[..secret.len().min(12)]
            );
        }
    }
}
