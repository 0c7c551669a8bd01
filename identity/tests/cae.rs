//! Continuous access evaluation against the emulator: CAE tokens (`cp1`), the cache keeping
//! CAE and non-CAE tokens apart, claims challenges always going to Entra, and
//! `ClaimsChallengeHandler` in `azure_core`'s `BearerTokenAuthorizationPolicy` recovering a
//! Key Vault call after a revocation.

use std::sync::Arc;

use azure_core::credentials::{TokenCredential, TokenRequestOptions};
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientOptions, Context, Method, Pipeline, Request, Url};
use azure_identity::{
    ClaimsChallengeHandler, ClientSecretCredential, ClientSecretCredentialOptions,
    TokenRequestExtras,
};
use base64::Engine;
use entra_emulator::{Emulator, Endpoint, well_known};

const VAULT: &str = "https://vault.azure.net/.default";

fn credential(emu: &Emulator) -> Arc<ClientSecretCredential> {
    ClientSecretCredential::new(
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID.into(),
        well_known::CLIENT_SECRET.into(),
        Some(ClientSecretCredentialOptions {
            client_options: emu.client_options(),
            ..Default::default()
        }),
    )
    .unwrap()
}

fn with(extras: TokenRequestExtras) -> TokenRequestOptions<'static> {
    let mut options = TokenRequestOptions::default();
    options.method_options.context.insert(extras);
    options
}

fn cae() -> TokenRequestExtras {
    TokenRequestExtras {
        enable_cae: true,
        ..Default::default()
    }
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn token_requests(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.endpoint == Some(Endpoint::Token))
        .count()
}

#[tokio::test]
async fn cae_tokens_declare_cp1_and_are_cached_apart() {
    let emu = Emulator::start().await.unwrap();
    let cred = credential(&emu);
    let plain = cred.get_token(&[VAULT], None).await.unwrap();
    let capable = cred.get_token(&[VAULT], Some(with(cae()))).await.unwrap();
    assert_ne!(plain.token.secret(), capable.token.secret());
    assert!(claims_of(plain.token.secret()).get("xms_cc").is_none());
    assert_eq!(claims_of(capable.token.secret())["xms_cc"][0], "cp1");
    let log = emu.requests();
    let sent = log.last().unwrap().form_field("claims").unwrap();
    assert_eq!(sent, r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#);
    // Both come from the cache now.
    let before = token_requests(&emu);
    cred.get_token(&[VAULT], None).await.unwrap();
    let again = cred.get_token(&[VAULT], Some(with(cae()))).await.unwrap();
    assert_eq!(again.token.secret(), capable.token.secret());
    assert_eq!(token_requests(&emu), before);
}

#[tokio::test]
async fn a_claims_challenge_always_goes_to_entra_and_replaces_the_cached_token() {
    let emu = Emulator::start().await.unwrap();
    let cred = credential(&emu);
    let first = cred.get_token(&[VAULT], Some(with(cae()))).await.unwrap();
    let challenge = r#"{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}"#;
    let extras = TokenRequestExtras {
        claims: Some(challenge.into()),
        enable_cae: true,
        ..Default::default()
    };
    let before = token_requests(&emu);
    let fresh = cred
        .get_token(&[VAULT], Some(with(extras.clone())))
        .await
        .unwrap();
    let fresher = cred.get_token(&[VAULT], Some(with(extras))).await.unwrap();
    assert_eq!(
        token_requests(&emu) - before,
        2,
        "each challenge goes to Entra"
    );
    assert_ne!(fresh.token.secret(), first.token.secret());
    let sent: serde_json::Value =
        serde_json::from_str(emu.requests().last().unwrap().form_field("claims").unwrap()).unwrap();
    assert_eq!(sent["access_token"]["nbf"]["value"], "1700000000");
    assert_eq!(sent["access_token"]["xms_cc"]["values"][0], "cp1");
    // The plain CAE request now gets the newest token, from the cache.
    let cached = cred.get_token(&[VAULT], Some(with(cae()))).await.unwrap();
    assert_eq!(cached.token.secret(), fresher.token.secret());
}

async fn get_secret(pipeline: &Pipeline, url: &str) -> u16 {
    let mut request = Request::new(Url::parse(url).unwrap(), Method::Get);
    match pipeline.send(&Context::new(), &mut request, None).await {
        Ok(response) => u16::from(response.status()),
        Err(e) => match e.kind() {
            azure_core::error::ErrorKind::HttpResponse { status, .. } => u16::from(*status),
            _ => panic!("{e}"),
        },
    }
}

#[tokio::test]
async fn the_challenge_handler_recovers_a_call_after_revocation() {
    let emu = Emulator::start().await.unwrap();
    let cred: Arc<dyn TokenCredential> = credential(&emu);
    let vault = emu.key_vault_url(well_known::KEY_VAULT_NAME).unwrap();
    // Put a secret with a plain token first.
    let token = cred.get_token(&[VAULT], None).await.unwrap();
    let put = emu
        .http_client()
        .put(format!("{vault}/secrets/handled?api-version=7.5"))
        .bearer_auth(token.token.secret())
        .json(&serde_json::json!({"value": "v"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);

    let handler = ClaimsChallengeHandler::new([VAULT]);
    let policy: Arc<dyn Policy> = Arc::new(
        BearerTokenAuthorizationPolicy::new(cred, Vec::<String>::new())
            .with_on_request(handler.clone())
            .with_on_challenge(handler),
    );
    let mut options = emu.client_options();
    options.cloud = None;
    let pipeline = Pipeline::new(None, None, options, Vec::new(), vec![policy], None);
    let url = format!("{vault}/secrets/handled?api-version=7.5");
    assert_eq!(get_secret(&pipeline, &url).await, 200);

    emu.revoke(well_known::SECRET_APP_CLIENT_ID).unwrap();
    let before = token_requests(&emu);
    assert_eq!(get_secret(&pipeline, &url).await, 200);
    assert_eq!(
        token_requests(&emu) - before,
        1,
        "one new token for the challenge"
    );
    let revoked = emu
        .requests()
        .iter()
        .filter(|r| r.failed_check.as_deref() == Some("revoked"))
        .count();
    assert_eq!(revoked, 1);
    // The new token is the policy's now: no more challenges.
    assert_eq!(get_secret(&pipeline, &url).await, 200);
    assert_eq!(token_requests(&emu) - before, 1);
}

#[tokio::test]
async fn a_challenge_it_cannot_answer_is_an_error_naming_it() {
    let emu = Emulator::start().await.unwrap();
    let cred: Arc<dyn TokenCredential> = credential(&emu);
    // Tokens for the wrong resource: the vault refuses them with its plain challenge, and a new
    // token for the same scopes cannot help.
    let handler = ClaimsChallengeHandler::new(["https://management.azure.com/.default"]);
    let policy: Arc<dyn Policy> = Arc::new(
        BearerTokenAuthorizationPolicy::new(cred, Vec::<String>::new())
            .with_on_request(handler.clone())
            .with_on_challenge(handler),
    );
    let options = ClientOptions {
        transport: emu.client_options().transport,
        ..Default::default()
    };
    let pipeline = Pipeline::new(None, None, options, Vec::new(), vec![policy], None);
    let vault = emu.key_vault_url(well_known::KEY_VAULT_NAME).unwrap();
    let status = get_secret(&pipeline, &format!("{vault}/secrets/x?api-version=7.5")).await;
    assert_eq!(status, 401);
    let refused = emu
        .requests()
        .iter()
        .filter(|r| r.failed_check.as_deref() == Some("audience"))
        .count();
    assert_eq!(refused, 2, "one retry, then the 401 is the answer");
}
