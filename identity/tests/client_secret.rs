//! ClientSecretCredential against the in-process emulator.
// Tests prepare fixtures with the real file system and clock; only the code under test is
// restricted to `azure_identity::os`.
#![allow(clippy::disallowed_methods)]

use azure_core::credentials::{TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions, TokenRequestExtras};
use entra_emulator::{Emulator, well_known};

const ARM: &str = "https://management.azure.com/.default";

fn credential(emu: &Emulator, secret: &str) -> std::sync::Arc<ClientSecretCredential> {
    ClientSecretCredential::new(
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID.to_string(),
        secret.to_string().into(),
        Some(ClientSecretCredentialOptions {
            client_options: emu.client_options(),
            ..Default::default()
        }),
    )
    .unwrap()
}

#[tokio::test]
async fn gets_and_caches_a_token() {
    let emu = Emulator::start().await.unwrap();
    let cred = credential(&emu, well_known::CLIENT_SECRET);
    let token = cred.get_token(&[ARM], None).await.unwrap();
    assert_eq!(token.token.secret().split('.').count(), 3);
    let again = cred.get_token(&[ARM], None).await.unwrap();
    assert_eq!(again.token.secret(), token.token.secret());
    let posts: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post.form_field("grant_type"), Some("client_credentials"));
    assert_eq!(post.form_field("scope"), Some(ARM));
    assert!(post.headers.contains_key("x-ms-client-request-id"));
    assert!(
        post.headers["user-agent"].contains("azsdk-rust-identity"),
        "{:?}",
        post.headers
    );
}

#[tokio::test]
async fn wrong_secret_surfaces_the_aadsts_code_and_raw_response() {
    let emu = Emulator::start().await.unwrap();
    let cred = credential(&emu, "wrong");
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Credential);
    let text = err.to_string();
    assert!(text.starts_with("ClientSecretCredential authentication failed. AADSTS7000215: Invalid client secret provided."), "{text}");
    assert!(
        text.ends_with(
            "To troubleshoot, visit https://aka.ms/azsdk/rust/identity/troubleshoot#client-secret"
        ),
        "{text}"
    );
    let inner = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<azure_core::Error>())
        .expect("inner azure_core error");
    match inner.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            assert_eq!(u16::from(*status), 401);
            assert_eq!(error_code.as_deref(), Some("7000215"));
            assert!(raw_response.is_some());
        }
        other => panic!("unexpected kind {other:?}"),
    }
}

#[tokio::test]
async fn per_request_tenant_must_be_allowed() {
    let emu = Emulator::start().await.unwrap();
    let cred = credential(&emu, well_known::CLIENT_SECRET);
    let mut options = TokenRequestOptions::default();
    options.method_options.context.insert(TokenRequestExtras {
        tenant_id: Some("33333333-0000-0000-0000-000000000000".into()),
        claims: None,
        enable_cae: false,
    });
    let err = cred.get_token(&[ARM], Some(options)).await.unwrap_err();
    assert!(
        err.to_string().contains("additionally_allowed_tenants"),
        "{err}"
    );
}
