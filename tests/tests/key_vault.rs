//! The real `azure_security_keyvault_secrets` `SecretClient` (from crates.io, unmodified)
//! against the emulator's Key Vault, authenticated by this crate's credentials: set, get,
//! list, delete/recover; and continuous access evaluation: after `revoke`, the next call
//! recovers through `ContinuousAccessPolicy` with exactly one new token request.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, RequestContent};
use azure_identity::os::{MapEnv, Os};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ContinuousAccessPolicy,
    DefaultAzureCredential, DefaultAzureCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions,
};
use azure_security_keyvault_secrets::models::SetSecretParameters;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use entra_emulator::Emulator;
use entra_emulator::config::well_known;
use entra_emulator::faults::Endpoint;

/// Client options whose transport trusts the emulator's CA, with no cloud override (the vault
/// tells the client where to get tokens).
fn transport(emu: &Emulator) -> ClientOptions {
    let mut options = emu.client_options();
    options.cloud = None;
    options
}

/// A `SecretClient` for the home vault with CAE installed. The vault listens on 127.0.0.1, so
/// the client's check that the challenge's resource matches the vault's domain is off.
fn secret_client(emu: &Emulator, credential: Arc<dyn TokenCredential>) -> SecretClient {
    let mut client_options = transport(emu);
    ContinuousAccessPolicy::install(credential.clone(), &mut client_options);
    let url = emu.key_vault_url(well_known::KEY_VAULT_NAME).unwrap();
    SecretClient::new(
        &url,
        credential,
        Some(SecretClientOptions {
            client_options,
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )
    .unwrap()
}

fn secret_credential(emu: &Emulator) -> Arc<dyn TokenCredential> {
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

/// An `Os` whose environment is `env` (a ready-file profile).
fn os_with(env: std::collections::BTreeMap<String, String>) -> Os {
    Os {
        env: Arc::new(env.into_iter().collect::<MapEnv>()),
        ..Os::default()
    }
}

fn token_requests(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| {
            matches!(
                r.endpoint,
                Some(Endpoint::Token) | Some(Endpoint::Imds) | Some(Endpoint::AppService)
            )
        })
        .count()
}

fn parameters(value: &str) -> RequestContent<SetSecretParameters> {
    SetSecretParameters {
        value: Some(value.to_string()),
        content_type: Some("text/plain".into()),
        ..Default::default()
    }
    .try_into()
    .unwrap()
}

/// Set and get; then revoke `subject` and get again: the call succeeds, with one new token
/// request, after one 401 that the log attributes to the revocation.
async fn set_get_revoke_recover(
    emu: &Emulator,
    credential: Arc<dyn TokenCredential>,
    subject: &str,
) {
    let client = secret_client(emu, credential);
    let name = format!("secret-{}", subject.split('-').next().unwrap());
    let set = client
        .set_secret(&name, parameters("first value"), None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(set.value.as_deref(), Some("first value"));
    let got = client
        .get_secret(&name, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(got.value.as_deref(), Some("first value"));
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));

    let before = token_requests(emu);
    emu.revoke(subject).unwrap();
    let again = client
        .get_secret(&name, None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert_eq!(again.value.as_deref(), Some("first value"));
    assert_eq!(
        token_requests(emu) - before,
        1,
        "one new token request after the revocation"
    );
    let log = emu.requests();
    let revoked = log
        .iter()
        .filter(|r| r.failed_check.as_deref() == Some("revoked"))
        .count();
    assert_eq!(revoked, 1, "one 401 for the revoked token: {log:#?}");
    // The next call sends the new token at once.
    let before = token_requests(emu);
    client.get_secret(&name, None).await.unwrap();
    assert_eq!(token_requests(emu), before);
    assert_eq!(
        emu.requests()
            .iter()
            .filter(|r| r.failed_check.as_deref() == Some("revoked"))
            .count(),
        1
    );
}

#[tokio::test]
async fn client_secret_credential_with_the_real_secret_client() {
    let emu = Emulator::start().await.unwrap();
    let credential = secret_credential(&emu);
    set_get_revoke_recover(&emu, credential, well_known::SECRET_APP_CLIENT_ID).await;
}

#[tokio::test]
async fn managed_identity_credential_with_the_real_secret_client() {
    let emu = Emulator::start().await.unwrap();
    let env = emu.ready_info().profile("imds").unwrap().clone();
    let credential: Arc<dyn TokenCredential> =
        ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            client_options: transport(&emu),
            os: os_with(env),
            ..Default::default()
        }))
        .unwrap();
    set_get_revoke_recover(&emu, credential, well_known::SYSTEM_ASSIGNED_CLIENT_ID).await;
}

#[tokio::test]
async fn default_azure_credential_with_the_real_secret_client() {
    let emu = Emulator::start().await.unwrap();
    let mut env = emu.ready_info().profile("client_secret").unwrap().clone();
    env.insert(
        "AZURE_TOKEN_CREDENTIALS".into(),
        "environmentcredential".into(),
    );
    let credential: Arc<dyn TokenCredential> =
        DefaultAzureCredential::new(Some(DefaultAzureCredentialOptions {
            client_options: transport(&emu),
            os: os_with(env),
            ..Default::default()
        }))
        .unwrap();
    set_get_revoke_recover(&emu, credential, well_known::SECRET_APP_CLIENT_ID).await;
}

#[tokio::test]
async fn list_delete_recover_and_purge_with_the_real_secret_client() {
    use futures::TryStreamExt;
    let emu = Emulator::start().await.unwrap();
    let credential = secret_credential(&emu);
    let client = secret_client(&emu, credential);
    // More secrets than one page (25) holds: the pager follows nextLink.
    for i in 0..30 {
        client
            .set_secret(&format!("paged-{i:02}"), parameters("v"), None)
            .await
            .unwrap();
    }
    client
        .set_secret("paged-00", parameters("v2"), None)
        .await
        .unwrap();
    let names: Vec<String> = client
        .list_secret_properties(None)
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|p| p.id)
        .collect();
    assert_eq!(names.len(), 30, "{names:?}");
    let versions = client
        .list_secret_properties_versions("paged-00", None)
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    assert_eq!(versions.len(), 2);

    client.delete_secret("paged-01", None).await.unwrap();
    let missing = client.get_secret("paged-01", None).await.unwrap_err();
    assert!(
        missing.to_string().contains("SecretNotFound")
            || format!("{missing:?}").contains("SecretNotFound"),
        "{missing:?}"
    );
    let deleted = client
        .get_deleted_secret("paged-01", None)
        .await
        .unwrap()
        .into_model()
        .unwrap();
    assert!(
        deleted
            .recovery_id
            .unwrap()
            .ends_with("/deletedsecrets/paged-01")
    );
    client
        .recover_deleted_secret("paged-01", None)
        .await
        .unwrap();
    assert_eq!(
        client
            .get_secret("paged-01", None)
            .await
            .unwrap()
            .into_model()
            .unwrap()
            .value
            .as_deref(),
        Some("v")
    );
    client.delete_secret("paged-02", None).await.unwrap();
    client.purge_deleted_secret("paged-02", None).await.unwrap();
    assert!(client.get_deleted_secret("paged-02", None).await.is_err());
}
