//! Single flight, no cross-key blocking, refresh-ahead and serve-stale, deterministically: the
//! token endpoint is a transport that holds responses back until the test releases them, and
//! time is an injected clock.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_identity::os::{ManualClock, Os};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use entra_emulator::{Emulator, well_known};
use support::FakeSts;

async fn wait_for_calls(sts: &FakeSts, n: usize) {
    for _ in 0..1000 {
        if sts.calls() >= n {
            return;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("expected {n} calls, saw {}", sts.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_callers_on_a_cold_key_cause_one_request() {
    let sts = FakeSts::new(Duration::ZERO, Some("held"));
    let cred = sts.secret_credential();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let cred = cred.clone();
            tokio::spawn(async move { cred.get_token(&["https://held/.default"], None).await })
        })
        .collect();
    wait_for_calls(&sts, 1).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        sts.calls(),
        1,
        "only one request while the response is held back"
    );
    sts.release();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(sts.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_fetch_for_one_key_does_not_block_another_key() {
    let sts = FakeSts::new(Duration::ZERO, Some("held"));
    let cred = sts.secret_credential();
    let held = {
        let cred = cred.clone();
        tokio::spawn(async move { cred.get_token(&["https://held/.default"], None).await })
    };
    wait_for_calls(&sts, 1).await;
    // The other key completes while the first is still held back.
    let other = tokio::time::timeout(
        Duration::from_secs(10),
        cred.get_token(&["https://other/.default"], None),
    )
    .await
    .expect("the other key is not blocked")
    .unwrap();
    assert!(!other.token.secret().is_empty());
    assert!(!held.is_finished());
    sts.release();
    held.await.unwrap().unwrap();
    assert_eq!(sts.calls(), 2);
}

#[tokio::test]
async fn refresh_ahead_and_serve_stale_against_the_emulator_with_an_injected_clock() {
    let emu = Emulator::start().await.unwrap();
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let cred = ClientSecretCredential::new(
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID.into(),
        well_known::CLIENT_SECRET.into(),
        Some(ClientSecretCredentialOptions {
            client_options: emu.client_options(),
            os: Os {
                clock: clock.clone(),
                ..Os::default()
            },
            ..Default::default()
        }),
    )
    .unwrap();
    let scope = ["https://management.azure.com/.default"];
    let posts = || emu.requests().iter().filter(|r| r.method == "POST").count();
    let first = cred.get_token(&scope, None).await.unwrap();
    clock.advance(time::Duration::minutes(50));
    let cached = cred.get_token(&scope, None).await.unwrap();
    assert_eq!(cached.token.secret(), first.token.secret());
    assert_eq!(posts(), 1);
    // Five minutes before expiry: refreshed ahead.
    clock.advance(time::Duration::minutes(5));
    let refreshed = cred.get_token(&scope, None).await.unwrap();
    assert_ne!(refreshed.token.secret(), first.token.secret());
    assert_eq!(posts(), 2);
    // The secret is revoked; the next refresh fails while the token is still valid: served.
    let mut seed = emu.effective_seed();
    seed.applications[0].secrets.clear();
    emu.apply_seed(seed).unwrap();
    clock.advance(time::Duration::minutes(56));
    let stale = cred.get_token(&scope, None).await.unwrap();
    assert_eq!(stale.token.secret(), refreshed.token.secret());
    assert_eq!(posts(), 3);
    // Once it has expired, the error surfaces.
    clock.advance(time::Duration::minutes(5));
    let err = cred.get_token(&scope, None).await.unwrap_err();
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
}
