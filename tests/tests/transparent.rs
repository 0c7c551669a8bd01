//! Transparent mode end to end: this crate's `ClientSecretCredential` and the unmodified
//! crates.io `SecretClient`, configured only with a transport through the emulator's proxy
//! (which trusts the transparent-mode CA), talk to `login.microsoftonline.com` and
//! `emulator-vault.vault.azure.net` as if they were Azure: no authority override, and the
//! client's own check that the challenge's resource matches the vault's domain stays on.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::RequestContent;
use azure_identity::os::{MapEnv, Os};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use azure_security_keyvault_secrets::models::SetSecretParameters;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use entra_emulator::Emulator;
use entra_emulator::config::well_known;

#[tokio::test]
async fn the_library_and_a_key_vault_client_use_azure_names() {
    let emu = Emulator::start().await.unwrap();
    let credential: Arc<dyn TokenCredential> = ClientSecretCredential::new(
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID.into(),
        well_known::CLIENT_SECRET.into(),
        Some(ClientSecretCredentialOptions {
            client_options: emu.transparent_client_options(),
            // No AZURE_AUTHORITY_HOST: Entra's public authority.
            os: Os {
                env: Arc::new(MapEnv::new()),
                ..Os::default()
            },
            ..Default::default()
        }),
    )
    .unwrap();
    let client = SecretClient::new(
        "https://emulator-vault.vault.azure.net",
        credential,
        Some(SecretClientOptions {
            client_options: emu.transparent_client_options(),
            ..Default::default()
        }),
    )
    .unwrap();
    let parameters: RequestContent<SetSecretParameters> = SetSecretParameters {
        value: Some("through the proxy".into()),
        ..Default::default()
    }
    .try_into()
    .unwrap();
    client
        .set_secret("transparent", parameters, None)
        .await
        .unwrap();
    let secret = client
        .get_secret("transparent", None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(secret.value.as_deref(), Some("through the proxy"));
    assert!(
        secret.id.as_deref().is_some_and(
            |id| id.starts_with("https://emulator-vault.vault.azure.net/secrets/transparent/")
        ),
        "{:?}",
        secret.id
    );
    // One token request, made to the public authority's name through the proxy.
    let grants: Vec<_> = emu
        .requests()
        .iter()
        .filter_map(|r| r.form_field("grant_type").map(str::to_string))
        .collect();
    assert_eq!(grants, ["client_credentials"]);
}
