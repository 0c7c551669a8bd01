//! Every fault class the emulator injects, against the credentials it affects: each either
//! retries by its policy and then succeeds, or fails with a clear error within its bound.
//! Managed identity waits on a manual clock; token-endpoint retries use tiny back-offs, and a
//! hang is cut by a short `ExchangeLimits` try timeout.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions};
use azure_identity::os::{Clock, ManualClock, MapEnv, Os};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ExchangeLimits,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, is_unavailable,
};
use entra_emulator::{Emulator, Endpoint, Fault, FaultAction, well_known};

const ARM: &str = "https://management.azure.com/.default";
/// The try timeout the tests use; a hang is cut after this.
const TRY_TIMEOUT_MS: i64 = 300;
/// Every failing call must end well within this (an upper bound, never a target).
const BOUND: Duration = Duration::from_secs(10);

fn options(emu: &Emulator) -> ClientOptions {
    let mut options = emu.client_options();
    options.retry = RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: time::Duration::milliseconds(1),
        max_delay: time::Duration::milliseconds(5),
        max_retries: 3,
        max_total_elapsed: time::Duration::seconds(20),
    });
    options.per_try_policies.push(Arc::new(ExchangeLimits {
        try_timeout: time::Duration::milliseconds(TRY_TIMEOUT_MS),
        ..ExchangeLimits::default()
    }));
    options
}

fn secret_credential(emu: &Emulator) -> Arc<ClientSecretCredential> {
    ClientSecretCredential::new(
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID.to_string(),
        well_known::CLIENT_SECRET.to_string().into(),
        Some(ClientSecretCredentialOptions {
            client_options: options(emu),
            ..Default::default()
        }),
    )
    .unwrap()
}

/// An IMDS credential whose back-offs advance a manual clock.
fn imds_credential(emu: &Emulator) -> (Arc<ManualClock>, Arc<ManagedIdentityCredential>) {
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let mut os = Os::with_manual_clock(clock.clone());
    os.env = Arc::new(MapEnv::from([(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        emu.http_url(),
    )]));
    let cred = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        client_options: options(emu),
        os,
        ..Default::default()
    }))
    .unwrap();
    (clock, cred)
}

/// A credential for a managed-identity host profile of the emulator (App Service, Arc, ...).
fn host_credential(emu: &Emulator, profile: &str) -> Arc<ManagedIdentityCredential> {
    let env: MapEnv = emu
        .ready_info()
        .profile(profile)
        .unwrap()
        .clone()
        .into_iter()
        .collect();
    let mut client_options = options(emu);
    if profile == "service_fabric" {
        // Its own pinned transport; keep the retry and limits.
        client_options.transport = None;
    }
    ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        client_options,
        arc_key_directory: Some(emu.state_dir().join("arc-tokens")),
        os: Os {
            env: Arc::new(env),
            ..Os::default()
        },
        ..Default::default()
    }))
    .unwrap()
}

fn faulted(emu: &Emulator) -> usize {
    emu.requests().iter().filter(|r| r.fault.is_some()).count()
}

fn served(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.fault.is_none() && r.status == 200)
        .count()
}

/// Runs `get_token` and returns its error, asserting it ended within [`BOUND`].
async fn fails(cred: &dyn TokenCredential) -> String {
    let started = Instant::now();
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    err.to_string()
}

async fn emulator_with(fault: Fault) -> Emulator {
    let emu = Emulator::start().await.unwrap();
    emu.add_fault(fault).unwrap();
    emu
}

// ---- Token endpoint (ClientSecretCredential; every confidential credential shares the path) --

#[tokio::test]
async fn token_429_is_retried_after_retry_after_then_succeeds() {
    let emu = emulator_with(
        Fault::new(FaultAction::throttle(1))
            .on(Endpoint::Token)
            .times(1),
    )
    .await;
    let started = Instant::now();
    secret_credential(&emu)
        .get_token(&[ARM], None)
        .await
        .unwrap();
    // Retry-After: 1 is honoured (a sleep is never shorter than asked).
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!((faulted(&emu), served(&emu)), (1, 1));
}

#[tokio::test]
async fn token_5xx_is_retried_then_succeeds_or_fails_with_the_aadsts_error() {
    let emu = emulator_with(
        Fault::new(FaultAction::status(503))
            .on(Endpoint::Token)
            .times(2),
    )
    .await;
    secret_credential(&emu)
        .get_token(&[ARM], None)
        .await
        .unwrap();
    assert_eq!((faulted(&emu), served(&emu)), (2, 1));

    let emu = emulator_with(Fault::new(FaultAction::status(500)).on(Endpoint::Token)).await;
    let err = fails(secret_credential(&emu).as_ref()).await;
    assert!(err.contains("AADSTS90033"), "{err}");
    assert!(
        err.contains("ClientSecretCredential authentication failed"),
        "{err}"
    );
    // One try plus max_retries (3).
    assert_eq!(faulted(&emu), 4);
}

#[tokio::test]
async fn token_4xx_fault_is_not_retried() {
    let emu = emulator_with(Fault::new(FaultAction::status(400)).on(Endpoint::Token)).await;
    let err = fails(secret_credential(&emu).as_ref()).await;
    assert!(err.contains("AADSTS90004"), "{err}");
    assert_eq!(faulted(&emu), 1);
}

#[tokio::test]
async fn token_hang_is_cut_by_the_try_timeout_and_retried() {
    let emu = emulator_with(
        Fault::new(FaultAction::Hang { secs: None })
            .on(Endpoint::Token)
            .times(1),
    )
    .await;
    secret_credential(&emu)
        .get_token(&[ARM], None)
        .await
        .unwrap();
    assert_eq!((faulted(&emu), served(&emu)), (1, 1));

    let emu = emulator_with(Fault::new(FaultAction::Hang { secs: None }).on(Endpoint::Token)).await;
    let err = fails(secret_credential(&emu).as_ref()).await;
    assert!(
        err.contains(&format!("within {TRY_TIMEOUT_MS} ms")),
        "{err}"
    );
}

#[tokio::test]
async fn token_reset_and_truncated_body_are_retried_as_transport_errors() {
    for action in [
        FaultAction::Reset,
        FaultAction::Truncate { keep_bytes: None },
    ] {
        let emu = emulator_with(Fault::new(action.clone()).on(Endpoint::Token).times(2)).await;
        secret_credential(&emu)
            .get_token(&[ARM], None)
            .await
            .unwrap_or_else(|e| panic!("{action:?}: {e:?}"));
        assert_eq!((faulted(&emu), served(&emu)), (2, 1), "{action:?}");

        let emu = emulator_with(Fault::new(action.clone()).on(Endpoint::Token)).await;
        let err = fails(secret_credential(&emu).as_ref()).await;
        assert!(err.contains("ClientSecretCredential"), "{action:?}: {err}");
        assert_eq!(faulted(&emu), 4, "{action:?}");
    }
}

#[tokio::test]
async fn token_garbage_bodies_fail_at_once_with_what_was_wrong() {
    let cases = [
        (
            FaultAction::NotJson,
            "the token endpoint's response is not the expected JSON",
        ),
        (
            FaultAction::MissingFields { fields: vec![] },
            "has no access_token",
        ),
        (
            FaultAction::MissingFields {
                fields: vec!["expires_in".into(), "ext_expires_in".into()],
            },
            "neither expires_in nor expires_on",
        ),
        (
            FaultAction::Oversized {
                bytes: Some(4 << 20),
            },
            "is larger than 1048576 bytes",
        ),
    ];
    for (action, expected) in cases {
        let emu = emulator_with(Fault::new(action.clone()).on(Endpoint::Token)).await;
        let err = fails(secret_credential(&emu).as_ref()).await;
        assert!(err.contains(expected), "{action:?}: {err}");
        // A 200 is final: no retry.
        assert_eq!(faulted(&emu), 1, "{action:?}");
    }
}

#[tokio::test]
async fn token_latency_and_server_clock_skew_do_not_matter() {
    let emu = emulator_with(Fault::new(FaultAction::Latency { ms: 50 }).on(Endpoint::Token)).await;
    secret_credential(&emu)
        .get_token(&[ARM], None)
        .await
        .unwrap();

    // Tokens minted two hours in the past: the credential times them by `expires_in`, relative to
    // its own clock, so the token is fresh for an hour from now.
    let emu =
        emulator_with(Fault::new(FaultAction::ClockSkew { secs: -7200 }).on(Endpoint::Token)).await;
    let token = secret_credential(&emu)
        .get_token(&[ARM], None)
        .await
        .unwrap();
    let left = token.expires_on - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(50), "{left}");
}

#[tokio::test]
async fn discovery_and_jwks_faults_do_not_touch_confidential_credentials() {
    let emu = emulator_with(Fault::new(FaultAction::status(500)).on(Endpoint::Discovery)).await;
    emu.add_fault(Fault::new(FaultAction::Reset).on(Endpoint::Jwks))
        .unwrap();
    secret_credential(&emu)
        .get_token(&[ARM], None)
        .await
        .unwrap();
    assert_eq!(faulted(&emu), 0);
}

// ---- IMDS ----------------------------------------------------------------------------------

#[tokio::test]
async fn imds_transient_statuses_are_retried_on_the_injected_clock() {
    for (action, times) in [
        (FaultAction::status(503), 2),
        (FaultAction::status(404), 2),
        (FaultAction::Gone, 3),
        (FaultAction::throttle(9), 1),
    ] {
        let emu = emulator_with(Fault::new(action.clone()).on(Endpoint::Imds).times(times)).await;
        let (clock, cred) = imds_credential(&emu);
        let start = clock.now();
        cred.get_token(&[ARM], None)
            .await
            .unwrap_or_else(|e| panic!("{action:?}: {e:?}"));
        assert_eq!(faulted(&emu) as u64, times, "{action:?}");
        let waited = clock.now() - start;
        if matches!(action, FaultAction::Status { status: 429, .. }) {
            assert!(waited >= time::Duration::seconds(9), "{waited}");
        } else {
            assert!(waited >= time::Duration::seconds(1), "{action:?}: {waited}");
        }
    }
}

#[tokio::test]
async fn imds_persistent_5xx_gives_up_within_the_retry_budget() {
    let emu = emulator_with(Fault::new(FaultAction::status(500)).on(Endpoint::Imds)).await;
    let (clock, cred) = imds_credential(&emu);
    let start = clock.now();
    let err = fails(cred.as_ref()).await;
    assert!(
        err.contains("500 response from the IMDS managed identity endpoint (after 5 retries)"),
        "{err}"
    );
    assert!(clock.now() - start <= time::Duration::seconds(100));
    assert_eq!(faulted(&emu), 6);
}

#[tokio::test]
async fn imds_unreachable_403_means_unavailable() {
    let emu = emulator_with(Fault::new(FaultAction::Unreachable).on(Endpoint::Imds)).await;
    let (_, cred) = imds_credential(&emu);
    let err = cred.get_token(&[ARM], None).await.unwrap_err();
    assert!(is_unavailable(&err), "{err:?}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert_eq!(faulted(&emu), 1);
}

#[tokio::test]
async fn imds_hang_reset_and_garbage_fail_clearly() {
    let cases = [
        (
            FaultAction::Hang { secs: None },
            format!("within {TRY_TIMEOUT_MS} ms"),
        ),
        (
            FaultAction::Reset,
            "No response from the IMDS endpoint".to_string(),
        ),
        (FaultAction::NotJson, "is not the expected JSON".to_string()),
        (
            FaultAction::MissingFields { fields: vec![] },
            "has no access_token".to_string(),
        ),
        (
            FaultAction::Oversized { bytes: None },
            "is larger than 1048576 bytes".to_string(),
        ),
    ];
    for (action, expected) in cases {
        let emu = emulator_with(Fault::new(action.clone()).on(Endpoint::Imds)).await;
        let (_, cred) = imds_credential(&emu);
        let err = fails(cred.as_ref()).await;
        assert!(err.contains(&expected), "{action:?}: {err}");
        // No answer at all means no IMDS here: unavailable, so a chain moves on.
        let silent = matches!(action, FaultAction::Hang { .. } | FaultAction::Reset);
        let e = cred.get_token(&[ARM], None).await.unwrap_err();
        assert_eq!(is_unavailable(&e), silent, "{action:?}: {e}");
    }
}

// ---- The other managed-identity hosts and Azure Pipelines --------------------------------

#[tokio::test]
async fn other_hosts_fail_clearly_on_5xx_hang_and_garbage() {
    let hosts = [
        ("app_service", Endpoint::AppService, "App Service"),
        ("azure_arc", Endpoint::Arc, "Azure Arc"),
        ("service_fabric", Endpoint::ServiceFabric, "Service Fabric"),
        ("cloud_shell", Endpoint::CloudShell, "Cloud Shell"),
        ("azure_ml", Endpoint::AzureMl, "Azure ML"),
    ];
    for (profile, endpoint, name) in hosts {
        // Azure Arc's first request is the challenge, which must be a 401.
        let arc = endpoint == Endpoint::Arc;
        for (action, expected) in [
            (
                FaultAction::status(500),
                if arc {
                    "expected a 401 response from the Azure Arc endpoint, received 500".to_string()
                } else {
                    format!("500 response from the {name}")
                },
            ),
            (
                FaultAction::Hang { secs: None },
                format!("within {TRY_TIMEOUT_MS} ms"),
            ),
            (FaultAction::NotJson, "is not the expected JSON".to_string()),
        ] {
            let emu = emulator_with(Fault::new(action.clone()).on(endpoint)).await;
            let err = fails(host_credential(&emu, profile).as_ref()).await;
            assert!(err.contains(&expected), "{profile} {action:?}: {err}");
        }
        // A transient fault once: retried by the pipeline, then a token.
        let emu = emulator_with(Fault::new(FaultAction::status(503)).on(endpoint).times(1)).await;
        host_credential(&emu, profile)
            .get_token(&[ARM], None)
            .await
            .unwrap_or_else(|e| panic!("{profile}: {e:?}"));
    }
}

#[tokio::test]
async fn pipelines_redirect_and_outage_fail_with_the_devops_diagnostics() {
    use azure_identity::{AzurePipelinesCredential, AzurePipelinesCredentialOptions};
    for (action, expected) in [
        (
            FaultAction::Redirect { location: None },
            "the system access token was not accepted",
        ),
        (
            FaultAction::status(503),
            "503 response from the OIDC endpoint",
        ),
    ] {
        let emu = emulator_with(Fault::new(action.clone()).on(Endpoint::Pipelines)).await;
        let env: MapEnv = emu
            .ready_info()
            .profile("azure_pipelines")
            .unwrap()
            .clone()
            .into_iter()
            .collect();
        let credential_options = azure_identity::ClientAssertionCredentialOptions {
            client_options: options(&emu),
            os: Os {
                env: Arc::new(env),
                ..Os::default()
            },
            ..Default::default()
        };
        let cred = AzurePipelinesCredential::new(
            well_known::TENANT_ID.to_string(),
            well_known::PIPELINES_APP_CLIENT_ID.to_string(),
            well_known::SERVICE_CONNECTION_ID,
            well_known::SYSTEM_ACCESS_TOKEN.to_string(),
            Some(AzurePipelinesCredentialOptions { credential_options }),
        )
        .unwrap();
        let err = fails(cred.as_ref()).await;
        assert!(err.contains(expected), "{action:?}: {err}");
        assert!(err.contains("x-vss-e2eid"), "{action:?}: {err}");
        assert!(!err.contains(well_known::SYSTEM_ACCESS_TOKEN));
    }
}
