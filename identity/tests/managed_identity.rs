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
async fn unassigned_identity_and_unsupported_sources_give_clear_errors() {
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
    for (vars, expected) in [
        (
            vec![
                ("IDENTITY_ENDPOINT", "http://x"),
                ("IDENTITY_HEADER", "h"),
                ("IDENTITY_SERVER_THUMBPRINT", "t"),
            ],
            "Service Fabric",
        ),
        (
            vec![
                ("IDENTITY_ENDPOINT", "http://x"),
                ("IMDS_ENDPOINT", "http://x"),
            ],
            "Azure Arc",
        ),
        (
            vec![("MSI_ENDPOINT", "http://x"), ("MSI_SECRET", "s")],
            "Azure ML",
        ),
        (vec![("MSI_ENDPOINT", "http://x")], "CloudShell"),
    ] {
        let env: MapEnv = vars.into_iter().collect();
        let err = ManagedIdentityCredential::new(Some(options(&emu, env, None))).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{expected} managed identity isn't supported")
        );
    }
}
