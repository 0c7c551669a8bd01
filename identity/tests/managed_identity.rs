//! ManagedIdentityCredential against the emulator's IMDS and App Service endpoints. The IMDS
//! address is always the emulator's loopback listener, never 169.254.169.254.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::os::{MapEnv, Os};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use entra_emulator::{Emulator, well_known};

const ARM: &str = "https://management.azure.com/.default";

fn options(
    emu: &Emulator,
    env: MapEnv,
    id: Option<UserAssignedId>,
) -> ManagedIdentityCredentialOptions {
    ManagedIdentityCredentialOptions {
        user_assigned_id: id,
        client_options: emu.client_options(),
        os: Os {
            env: Arc::new(env),
            ..Os::default()
        },
        ..Default::default()
    }
}

fn appid(token: &azure_core::credentials::AccessToken) -> String {
    use base64::Engine;
    let payload = token.token.secret().split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["appid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn imds_system_and_every_user_assigned_id_kind() {
    let emu = Emulator::start().await.unwrap();
    let env = MapEnv::from([("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.http_url())]);
    let cases = [
        (None, well_known::SYSTEM_ASSIGNED_CLIENT_ID),
        (
            Some(UserAssignedId::ClientId(
                well_known::USER_ASSIGNED_CLIENT_ID.into(),
            )),
            well_known::USER_ASSIGNED_CLIENT_ID,
        ),
        (
            Some(UserAssignedId::ObjectId(
                well_known::USER_ASSIGNED_OBJECT_ID.into(),
            )),
            well_known::USER_ASSIGNED_CLIENT_ID,
        ),
        (
            Some(UserAssignedId::ResourceId(
                well_known::USER_ASSIGNED_RESOURCE_ID.into(),
            )),
            well_known::USER_ASSIGNED_CLIENT_ID,
        ),
    ];
    for (id, expected) in cases {
        let cred = ManagedIdentityCredential::new(Some(options(&emu, env.clone(), id))).unwrap();
        let token = cred.get_token(&[ARM], None).await.unwrap();
        assert_eq!(appid(&token), expected);
    }
    let imds = emu
        .requests()
        .into_iter()
        .find(|r| r.path == "/metadata/identity/oauth2/token")
        .unwrap();
    assert_eq!(imds.headers["metadata"], "true");
    assert_eq!(imds.query_param("api-version"), Some("2019-08-01"));
}

#[tokio::test]
async fn app_service_system_and_every_user_assigned_id_kind() {
    let emu = Emulator::start().await.unwrap();
    let env = MapEnv::from([
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", emu.http_url())),
        (
            "IDENTITY_HEADER",
            well_known::APP_SERVICE_IDENTITY_HEADER.to_string(),
        ),
    ]);
    let cases = [
        (None, well_known::SYSTEM_ASSIGNED_CLIENT_ID),
        (
            Some(UserAssignedId::ClientId(
                well_known::USER_ASSIGNED_CLIENT_ID.into(),
            )),
            well_known::USER_ASSIGNED_CLIENT_ID,
        ),
        (
            Some(UserAssignedId::ObjectId(
                well_known::USER_ASSIGNED_OBJECT_ID.into(),
            )),
            well_known::USER_ASSIGNED_CLIENT_ID,
        ),
        (
            Some(UserAssignedId::ResourceId(
                well_known::USER_ASSIGNED_RESOURCE_ID.into(),
            )),
            well_known::USER_ASSIGNED_CLIENT_ID,
        ),
    ];
    for (id, expected) in cases {
        let cred = ManagedIdentityCredential::new(Some(options(&emu, env.clone(), id))).unwrap();
        assert_eq!(
            appid(&cred.get_token(&[ARM], None).await.unwrap()),
            expected
        );
    }
}

#[tokio::test]
async fn unassigned_identity_gives_a_clear_error() {
    let emu = Emulator::start().await.unwrap();
    let env = MapEnv::from([("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.http_url())]);
    let cred = ManagedIdentityCredential::new(Some(options(
        &emu,
        env,
        Some(UserAssignedId::ClientId(
            "00000000-0000-0000-0000-00000000dead".into(),
        )),
    )))
    .unwrap();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("The requested identity has not been assigned to this resource"),
        "{err}"
    );
    assert!(err.to_string().ends_with("#managed-id"), "{err}");
}

/// The environment of one of the emulator's ready-file profiles.
fn profile_env(emu: &Emulator, name: &str) -> MapEnv {
    emu.ready_info()
        .profile(name)
        .unwrap()
        .clone()
        .into_iter()
        .collect()
}

fn host_options(
    emu: &Emulator,
    profile: &str,
    id: Option<UserAssignedId>,
) -> ManagedIdentityCredentialOptions {
    ManagedIdentityCredentialOptions {
        arc_key_directory: Some(emu.state_dir().join("arc-tokens")),
        ..options(emu, profile_env(emu, profile), id)
    }
}

#[tokio::test]
async fn every_other_host_kind_gets_a_token_from_its_profile() {
    let emu = Emulator::start().await.unwrap();
    let cases = [
        ("azure_arc", None, well_known::SYSTEM_ASSIGNED_CLIENT_ID),
        (
            "service_fabric",
            None,
            well_known::SYSTEM_ASSIGNED_CLIENT_ID,
        ),
        ("azure_ml", None, well_known::SYSTEM_ASSIGNED_CLIENT_ID),
        (
            "azure_ml",
            Some(UserAssignedId::ClientId(
                well_known::USER_ASSIGNED_CLIENT_ID.into(),
            )),
            well_known::USER_ASSIGNED_CLIENT_ID,
        ),
        // Cloud Shell tokens are the signed-in user's, issued to the Azure CLI client.
        ("cloud_shell", None, "04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
    ];
    for (profile, id, expected) in cases {
        // Service Fabric: the client options carry no transport, so the credential builds its
        // own that pins IDENTITY_SERVER_THUMBPRINT.
        let mut opts = host_options(&emu, profile, id);
        if profile == "service_fabric" {
            opts.client_options = Default::default();
        }
        let cred = ManagedIdentityCredential::new(Some(opts)).unwrap();
        let token = cred
            .get_token(&[ARM], None)
            .await
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
        assert_eq!(appid(&token), expected, "{profile}");
    }
}

#[tokio::test]
async fn service_fabric_refuses_a_server_whose_thumbprint_does_not_match() {
    let emu = Emulator::start().await.unwrap();
    let mut env: Vec<(String, String)> = emu
        .ready_info()
        .profile("service_fabric")
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    for (k, v) in &mut env {
        if k == "IDENTITY_SERVER_THUMBPRINT" {
            *v = "00".repeat(20);
        }
    }
    let mut opts = options(&emu, env.into_iter().collect(), None);
    opts.client_options = Default::default();
    let cred = ManagedIdentityCredential::new(Some(opts)).unwrap();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ManagedIdentityCredential authentication failed."),
        "{err}"
    );
}

#[tokio::test]
async fn arc_challenge_files_outside_the_key_directory_are_refused() {
    let emu = Emulator::start().await.unwrap();
    let mut opts = host_options(&emu, "azure_arc", None);
    opts.arc_key_directory = Some("/var/opt/azcmagent/tokens".into());
    let cred = ManagedIdentityCredential::new(Some(opts)).unwrap();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("is not in /var/opt/azcmagent/tokens"),
        "{err}"
    );
}

#[tokio::test]
async fn user_assigned_ids_a_host_cannot_select_are_refused_at_construction() {
    let emu = Emulator::start().await.unwrap();
    let client = || {
        Some(UserAssignedId::ClientId(
            well_known::USER_ASSIGNED_CLIENT_ID.into(),
        ))
    };
    let object = || {
        Some(UserAssignedId::ObjectId(
            well_known::USER_ASSIGNED_OBJECT_ID.into(),
        ))
    };
    for (profile, id, message) in [
        (
            "azure_arc",
            client(),
            "Azure Arc managed identity doesn't support user-assigned client ids",
        ),
        (
            "service_fabric",
            client(),
            "Service Fabric managed identity doesn't support user-assigned client ids",
        ),
        (
            "cloud_shell",
            client(),
            "Cloud Shell managed identity doesn't support user-assigned client ids",
        ),
        (
            "azure_ml",
            object(),
            "Azure ML managed identity doesn't support user-assigned object ids",
        ),
    ] {
        let err =
            ManagedIdentityCredential::new(Some(host_options(&emu, profile, id))).unwrap_err();
        assert!(err.to_string().starts_with(message), "{profile}: {err}");
    }
}

mod support;

use azure_identity::ImdsRetryOptions;
use azure_identity::os::{Clock, ManualClock};
use support::Scripted;

/// An IMDS credential over a scripted transport, with a manual clock that sleeping advances.
fn scripted(
    script: &[(u16, Option<u32>)],
) -> (
    Arc<Scripted>,
    Arc<ManualClock>,
    Arc<ManagedIdentityCredential>,
) {
    let transport = Scripted::new(script);
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let mut os = Os::with_manual_clock(clock.clone());
    os.env = Arc::new(MapEnv::new());
    let cred = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        client_options: transport.client_options(),
        // A closed loopback address: the scripted transport answers before anything connects.
        imds_endpoint: Some("http://127.0.0.1:9".into()),
        os,
        ..Default::default()
    }))
    .unwrap();
    (transport, clock, cred)
}

#[tokio::test]
async fn imds_retries_404_429_and_5xx_with_backoff_and_retry_after() {
    let (transport, clock, cred) =
        scripted(&[(404, None), (429, Some(7)), (503, None), (500, None)]);
    let start = clock.now();
    let token = cred.get_token(&[ARM], None).await.unwrap();
    assert_eq!(token.token.secret(), "imds-token");
    assert_eq!(transport.calls(), 5);
    // Back-offs 1 s, max(2 s, Retry-After 7 s), 4 s, 8 s: 20 s of simulated time, none real.
    assert_eq!((clock.now() - start).whole_seconds(), 20);
}

#[tokio::test]
async fn imds_410_is_retried_for_up_to_seventy_seconds() {
    let (transport, clock, cred) = scripted(&[(410, None); 5]);
    let start = clock.now();
    cred.get_token(&[ARM], None).await.unwrap();
    assert_eq!(transport.calls(), 6);
    assert!((clock.now() - start) <= time::Duration::seconds(70));
    // A 410 that never ends fails within the window, with a clear error.
    let (transport, clock, cred) = scripted(&[(410, None); 50]);
    let start = clock.now();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!((clock.now() - start) <= time::Duration::seconds(70));
    assert!(
        err.to_string()
            .contains("410 response from the IMDS managed identity endpoint (after"),
        "{err}"
    );
    assert!(transport.calls() < 50);
}

#[tokio::test]
async fn imds_gives_up_after_max_retries_and_never_retries_400() {
    let (transport, _, cred) = scripted(&[(500, None); 20]);
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert_eq!(
        transport.calls(),
        1 + ImdsRetryOptions::default().max_retries as usize
    );
    assert!(err.to_string().contains("(after 5 retries)"), "{err}");
    let (transport, _, cred) = scripted(&[(400, None)]);
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert_eq!(transport.calls(), 1);
    assert!(err.to_string().contains("has not been assigned"), "{err}");
}
