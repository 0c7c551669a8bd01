//! The CLI credentials through the fake `az` and `azd`, against the in-process emulator: user
//! tokens, every failure mode classified within its time bound, and DeveloperToolsCredential's
//! choice of tool.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::os::ManualClock;
use azure_identity::*;
use base64::Engine;
use entra_emulator::Emulator;
use support::{executor, os_with_path};

const ARM: &str = "https://management.azure.com/.default";
const CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn az(emu: &Emulator, extra: &[(&str, &str)]) -> Arc<AzureCliCredential> {
    AzureCliCredential::new(Some(AzureCliCredentialOptions {
        executor: Some(executor(emu, "azure_cli", extra)),
        os: os_with_path(None),
        ..Default::default()
    }))
    .unwrap()
}

fn azd(emu: &Emulator, extra: &[(&str, &str)]) -> Arc<AzureDeveloperCliCredential> {
    AzureDeveloperCliCredential::new(Some(AzureDeveloperCliCredentialOptions {
        executor: Some(executor(emu, "azure_developer_cli", extra)),
        os: os_with_path(None),
        ..Default::default()
    }))
    .unwrap()
}

#[tokio::test]
async fn both_clis_return_the_signed_in_users_token() {
    let emu = Emulator::start().await.unwrap();
    for token in [
        az(&emu, &[]).get_token(&[ARM], None).await.unwrap(),
        azd(&emu, &[]).get_token(&[ARM], None).await.unwrap(),
    ] {
        let c = claims(token.token.secret());
        assert_eq!(c["appid"], CLI_CLIENT_ID);
        assert_eq!(c["idtyp"], "user");
        assert_eq!(c["scp"], "user_impersonation");
        assert!(token.expires_on > time::OffsetDateTime::now_utc());
    }
    // Each call runs the tool: the emulator saw two refresh-token grants.
    let grants = emu
        .requests()
        .iter()
        .filter(|r| r.form_field("grant_type") == Some("refresh_token"))
        .count();
    assert_eq!(grants, 2);
}

#[tokio::test]
async fn az_failure_modes_are_classified() {
    let emu = Emulator::start().await.unwrap();
    // Not signed in: unavailable (a chain moves on).
    let e = az(&emu, &[("FAKE_AZ_MODE", "not-logged-in")])
        .get_token(&[ARM], None)
        .await
        .unwrap_err();
    assert!(is_unavailable(&e), "{e}");
    assert!(e.to_string().contains("az login"), "{e}");
    // An old CLI without expires_on still works through expiresOn.
    let t = az(&emu, &[("FAKE_AZ_MODE", "old-cli")])
        .get_token(&[ARM], None)
        .await
        .unwrap();
    assert!(t.expires_on > time::OffsetDateTime::now_utc() + time::Duration::minutes(30));
    // Malformed output: a failure that says so.
    let e = az(&emu, &[("FAKE_AZ_MODE", "malformed")])
        .get_token(&[ARM], None)
        .await
        .unwrap_err();
    assert!(!is_unavailable(&e));
    assert!(
        e.to_string()
            .contains("unexpected output from the Azure CLI"),
        "{e}"
    );
    // Arbitrary failure: quoted, not unavailable.
    let e = az(&emu, &[("FAKE_AZ_MODE", "fail:3:ERROR: the sky fell")])
        .get_token(&[ARM], None)
        .await
        .unwrap_err();
    assert!(!is_unavailable(&e));
    assert!(
        e.to_string()
            .starts_with("AzureCliCredential authentication failed. ERROR: the sky fell"),
        "{e}"
    );
    // Not installed: unavailable.
    let missing = AzureCliCredential::new(Some(AzureCliCredentialOptions {
        os: os_with_path(Some("/nonexistent")),
        ..Default::default()
    }))
    .unwrap();
    let e = missing.get_token(&[ARM], None).await.unwrap_err();
    assert!(is_unavailable(&e));
    assert!(e.to_string().contains("Azure CLI not found on PATH"), "{e}");
}

#[tokio::test]
async fn a_hanging_cli_is_stopped_at_its_timeout() {
    let emu = Emulator::start().await.unwrap();
    // The injected clock's sleep completes at once, so the timeout wins deterministically and
    // the hanging child is killed when its future is dropped.
    let mut os = os_with_path(None);
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    os.sleep = clock;
    let cred = AzureCliCredential::new(Some(AzureCliCredentialOptions {
        executor: Some(executor(&emu, "azure_cli", &[("FAKE_AZ_MODE", "hang:600")])),
        timeout: Some(time::Duration::seconds(3)),
        os,
        ..Default::default()
    }))
    .unwrap();
    let started = std::time::Instant::now();
    let e = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(
        e.to_string()
            .contains("did not finish within 3 seconds and was stopped"),
        "{e}"
    );
}

#[tokio::test]
async fn azd_failure_modes_are_classified() {
    let emu = Emulator::start().await.unwrap();
    let e = azd(&emu, &[("FAKE_AZD_MODE", "not-logged-in")])
        .get_token(&[ARM], None)
        .await
        .unwrap_err();
    assert!(is_unavailable(&e), "{e}");
    assert!(
        e.to_string()
            .contains("not logged in, run `azd auth login` to login"),
        "{e}"
    );
    let e = azd(&emu, &[("FAKE_AZD_MODE", "malformed")])
        .get_token(&[ARM], None)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("unexpected output from the Azure Developer CLI"),
        "{e}"
    );
    let e = azd(&emu, &[("FAKE_AZD_MODE", "fail:1:boom")])
        .get_token(&[ARM], None)
        .await
        .unwrap_err();
    assert!(!is_unavailable(&e) && e.to_string().contains("boom"), "{e}");
}

#[tokio::test]
async fn developer_tools_moves_past_unavailable_tools_and_stops_on_failures() {
    let emu = Emulator::start().await.unwrap();
    let tools = |extra: &[(&str, &str)]| {
        // One executor for both tools: the profile's config dirs for both.
        let mut vars = emu.ready_info().profile("azure_cli").unwrap().clone();
        vars.extend(
            emu.ready_info()
                .profile("azure_developer_cli")
                .unwrap()
                .clone(),
        );
        vars.remove("PATH");
        for (k, v) in extra {
            vars.insert((*k).to_string(), (*v).to_string());
        }
        DeveloperToolsCredential::new(Some(DeveloperToolsCredentialOptions {
            executor: Some(Arc::new(support::EnvExecutor(vars))),
            os: os_with_path(None),
        }))
        .unwrap()
    };
    // az is not signed in: azd answers.
    let cred = tools(&[("FAKE_AZ_MODE", "not-logged-in")]);
    let token = cred.get_token(&[ARM], None).await.unwrap();
    assert_eq!(claims(token.token.secret())["appid"], CLI_CLIENT_ID);
    // Neither is signed in: the error lists both and what to do, and is unavailable.
    let cred = tools(&[
        ("FAKE_AZ_MODE", "not-logged-in"),
        ("FAKE_AZD_MODE", "not-logged-in"),
    ]);
    let e = cred.get_token(&[ARM], None).await.unwrap_err();
    let text = e.to_string();
    assert!(is_unavailable(&e));
    assert!(
        text.contains("- AzureCliCredential:") && text.contains("- AzureDeveloperCliCredential:"),
        "{text}"
    );
    assert!(
        text.contains("az login") && text.contains("azd auth login"),
        "{text}"
    );
    // az is set up but fails: the chain stops there instead of using azd's account.
    let cred = tools(&[(
        "FAKE_AZ_MODE",
        "fail:1:ERROR: AADSTS50173: the grant was revoked",
    )]);
    let e = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(!is_unavailable(&e));
    assert!(e.to_string().contains("AADSTS50173"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clis_and_emulator_faults_behind_the_clis() {
    use entra_emulator::{Endpoint, Fault, FaultAction};
    let emu = Emulator::start().await.unwrap();
    // Slow but within the timeout: a token.
    let t = az(&emu, &[("FAKE_AZ_MODE", "slow:200")])
        .get_token(&[ARM], None)
        .await
        .unwrap();
    assert_eq!(claims(t.token.secret())["appid"], CLI_CLIENT_ID);
    let t = azd(&emu, &[("FAKE_AZD_MODE", "slow:200")])
        .get_token(&[ARM], None)
        .await
        .unwrap();
    assert_eq!(claims(t.token.secret())["appid"], CLI_CLIENT_ID);
    // The emulator refuses the tools' refresh-token grant: the tools fail and the credential
    // quotes their error (not "unavailable": the tool is there and signed in).
    emu.add_fault(
        Fault::new(FaultAction::status(400))
            .on(Endpoint::Token)
            .client_id(CLI_CLIENT_ID),
    )
    .unwrap();
    let e = az(&emu, &[]).get_token(&[ARM], None).await.unwrap_err();
    assert!(!is_unavailable(&e), "{e}");
    assert!(e.to_string().contains("AADSTS90004"), "{e}");
    let e = azd(&emu, &[]).get_token(&[ARM], None).await.unwrap_err();
    assert!(!is_unavailable(&e), "{e}");
    assert!(e.to_string().contains("AADSTS90004"), "{e}");
    assert!(emu.requests().iter().any(|r| r.fault.is_some()));
}
