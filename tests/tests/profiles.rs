//! End to end across the crates: every ready-file profile the emulator publishes configures the
//! matching `azure_identity` credential through `DefaultAzureCredential` alone, with the
//! profile's variables as the (injected) environment.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::os::{MapEnv, Os};
use azure_identity::{DefaultAzureCredential, DefaultAzureCredentialOptions};
use base64::Engine;
use entra_emulator::{Emulator, well_known};

const ARM: &str = "https://management.azure.com/.default";

fn appid(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["appid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_profile_configures_default_azure_credential() {
    let emu = Emulator::start().await.unwrap();
    let ready = emu.ready_info();
    let cases = [
        (
            "client_secret",
            "environmentcredential",
            well_known::SECRET_APP_CLIENT_ID,
        ),
        (
            "client_certificate",
            "environmentcredential",
            well_known::CERTIFICATE_APP_CLIENT_ID,
        ),
        (
            "client_certificate_pfx",
            "environmentcredential",
            well_known::CERTIFICATE_APP_CLIENT_ID,
        ),
        (
            "workload_identity",
            "workloadidentitycredential",
            well_known::WORKLOAD_APP_CLIENT_ID,
        ),
        (
            "imds",
            "managedidentitycredential",
            well_known::SYSTEM_ASSIGNED_CLIENT_ID,
        ),
        (
            "imds_user_assigned",
            "managedidentitycredential",
            well_known::USER_ASSIGNED_CLIENT_ID,
        ),
        (
            "app_service",
            "managedidentitycredential",
            well_known::SYSTEM_ASSIGNED_CLIENT_ID,
        ),
        (
            "service_fabric",
            "managedidentitycredential",
            well_known::SYSTEM_ASSIGNED_CLIENT_ID,
        ),
        (
            "cloud_shell",
            "managedidentitycredential",
            "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
        ),
        (
            "azure_ml",
            "managedidentitycredential",
            well_known::SYSTEM_ASSIGNED_CLIENT_ID,
        ),
    ];
    for (profile, selection, expected) in cases {
        let mut vars = ready
            .profile(profile)
            .unwrap_or_else(|| panic!("no profile {profile}"))
            .clone();
        vars.insert("AZURE_TOKEN_CREDENTIALS".into(), selection.into());
        vars.remove("HTTP_PROXY");
        vars.remove("http_proxy");
        // Service Fabric pins its own certificate; everything else trusts the emulator's CA.
        let client_options = if profile == "service_fabric" {
            Default::default()
        } else {
            emu.client_options()
        };
        let mut client_options = client_options;
        client_options.cloud = None;
        let cred = DefaultAzureCredential::new(Some(DefaultAzureCredentialOptions {
            client_options,
            os: Os {
                env: Arc::new(vars.into_iter().collect::<MapEnv>()),
                ..Os::default()
            },
            ..Default::default()
        }))
        .unwrap();
        let token = cred
            .get_token(&[ARM], None)
            .await
            .unwrap_or_else(|e| panic!("{profile}: {e}"));
        assert_eq!(appid(token.token.secret()), expected, "{profile}");
    }
}
