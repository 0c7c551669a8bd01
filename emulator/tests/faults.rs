//! Fault injection: every action, the matchers and counters, and every way to install a fault
//! (library, control plane, seed, flag short form), as a client on the wire sees them.

mod common;

use std::time::Duration;

use base64::Engine;
use common::*;
use entra_emulator::{Emulator, Endpoint, Fault, FaultAction, Seed, well_known};
use serde_json::{Value, json};

const VAULT: &str = "https://vault.azure.net/.default";

fn client_with_timeout(emu: &Emulator, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(emu.ca_cert_pem().as_bytes()).unwrap()])
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

async fn secret_request(emu: &Emulator, scope: &str) -> reqwest::Result<reqwest::Response> {
    client_with_timeout(emu, Duration::from_secs(10))
        .post(emu.token_url(well_known::TENANT_ID))
        .form(&secret_form(well_known::CLIENT_SECRET, scope))
        .send()
        .await
}

async fn imds_request(emu: &Emulator, timeout: Duration) -> reqwest::Result<reqwest::Response> {
    client_with_timeout(emu, timeout)
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com",
            emu.http_url()
        ))
        .header("Metadata", "true")
        .send()
        .await
}

fn last_logged(emu: &Emulator) -> entra_emulator::LoggedRequest {
    emu.requests().pop().expect("a logged request")
}

#[tokio::test]
async fn a_status_fault_answers_in_the_endpoints_error_shape_then_retires() {
    let emu = emulator().await;
    emu.add_fault(
        Fault::new(FaultAction::throttle(7))
            .on(Endpoint::Token)
            .times(2),
    )
    .unwrap();
    for _ in 0..2 {
        let response = secret_request(&emu, ARM).await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        let body: Value = response.json().await.unwrap();
        assert_entra_error(429, &body, 90033, 429);
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    let logged = last_logged(&emu);
    assert_eq!(logged.status, 429);
    assert_eq!(logged.fault.as_deref(), Some("#1 status 429"));
    // Retired after two: the third request is served.
    let response = secret_request(&emu, ARM).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(last_logged(&emu).fault, None);
    let status = &emu.faults()[0];
    assert_eq!((status.hits, status.remaining), (2, Some(0)));

    // Managed-identity hosts answer in IMDS's shape.
    emu.add_fault(Fault::new(FaultAction::status(500)).on(Endpoint::Imds))
        .unwrap();
    let response = imds_request(&emu, Duration::from_secs(10)).await.unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unknown");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Active directory")
    );
}

#[tokio::test]
async fn matchers_pick_tenant_client_and_resource() {
    let emu = emulator().await;
    emu.add_fault(
        Fault::new(FaultAction::status(503))
            .on(Endpoint::Token)
            .tenant(well_known::TENANT_ID)
            .client_id(well_known::SECRET_APP_CLIENT_ID)
            .resource("vault.azure.net"),
    )
    .unwrap();
    assert_eq!(secret_request(&emu, ARM).await.unwrap().status(), 200);
    assert_eq!(secret_request(&emu, VAULT).await.unwrap().status(), 503);
    // IMDS is another endpoint: untouched.
    let response = imds_request(&emu, Duration::from_secs(10)).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn probability_with_a_seed_gives_the_same_sequence_every_run() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let emu = emulator().await;
        emu.add_fault(
            Fault::new(FaultAction::status(503))
                .on(Endpoint::Token)
                .probability(0.5, 42),
        )
        .unwrap();
        let mut statuses = Vec::new();
        for _ in 0..12 {
            statuses.push(secret_request(&emu, ARM).await.unwrap().status().as_u16());
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&503) && runs[0].contains(&200),
        "{:?}",
        runs[0]
    );
}

#[tokio::test]
async fn imds_presets_gone_and_unreachable() {
    let emu = emulator().await;
    emu.add_fault(Fault::new(FaultAction::Gone).on(Endpoint::Imds).times(1))
        .unwrap();
    emu.add_fault(
        Fault::new(FaultAction::Unreachable)
            .on(Endpoint::Imds)
            .times(1),
    )
    .unwrap();
    let gone = imds_request(&emu, Duration::from_secs(10)).await.unwrap();
    assert_eq!(gone.status(), 410);
    assert!(gone.text().await.unwrap().contains("70 seconds"));
    let unreachable = imds_request(&emu, Duration::from_secs(10)).await.unwrap();
    assert_eq!(unreachable.status(), 403);
    let text = unreachable.text().await.unwrap();
    assert!(text.contains("169.254.169.254:80") && text.contains("unreachable"));
    assert_eq!(
        imds_request(&emu, Duration::from_secs(10))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn redirect_stays_on_loopback_and_carries_devops_headers() {
    let emu = emulator().await;
    emu.add_fault(Fault::new(FaultAction::Redirect { location: None }).on(Endpoint::Pipelines))
        .unwrap();
    let response = client_with_timeout(&emu, Duration::from_secs(10))
        .post(format!(
            "{}/org/proj/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken?api-version=7.1&serviceConnectionId={}",
            emu.https_url(),
            well_known::SERVICE_CONNECTION_ID
        ))
        .bearer_auth(well_known::SYSTEM_ACCESS_TOKEN)
        .header("X-TFS-FedAuthRedirect", "Suppress")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&emu.https_url()), "{location}");
    assert!(response.headers().contains_key("x-vss-e2eid"));
}

#[tokio::test]
async fn hang_and_reset_send_no_response_and_are_logged_with_status_0() {
    let emu = emulator().await;
    emu.add_fault(
        Fault::new(FaultAction::Hang { secs: None })
            .on(Endpoint::Imds)
            .times(1),
    )
    .unwrap();
    let err = imds_request(&emu, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let logged = last_logged(&emu);
    assert_eq!(
        (logged.status, logged.fault.as_deref()),
        (0, Some("#1 hang 3600 s"))
    );

    emu.add_fault(Fault::new(FaultAction::Reset).on(Endpoint::Token).times(1))
        .unwrap();
    let err = secret_request(&emu, ARM).await.unwrap_err();
    assert!(!err.is_timeout() && err.is_request(), "{err:?}");
    assert_eq!(last_logged(&emu).status, 0);
    // The next request on a new connection is served.
    assert_eq!(secret_request(&emu, ARM).await.unwrap().status(), 200);
}

#[tokio::test]
async fn truncate_breaks_the_body_after_the_headers() {
    let emu = emulator().await;
    emu.add_fault(
        Fault::new(FaultAction::Truncate {
            keep_bytes: Some(40),
        })
        .on(Endpoint::Token)
        .times(1),
    )
    .unwrap();
    let response = secret_request(&emu, ARM).await.unwrap();
    assert_eq!(response.status(), 200);
    let full: usize = response.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(full > 40);
    assert!(
        response.bytes().await.is_err(),
        "the body must not complete"
    );
}

#[tokio::test]
async fn garbage_bodies_not_json_missing_fields_and_oversized() {
    let emu = emulator().await;
    emu.add_fault(
        Fault::new(FaultAction::NotJson)
            .on(Endpoint::Token)
            .times(1),
    )
    .unwrap();
    let response = secret_request(&emu, ARM).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err());

    emu.add_fault(
        Fault::new(FaultAction::MissingFields { fields: vec![] })
            .on(Endpoint::Token)
            .times(1),
    )
    .unwrap();
    let body: Value = secret_request(&emu, ARM)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        body.get("access_token").is_none() && body["expires_in"].is_number(),
        "{body}"
    );

    emu.add_fault(
        Fault::new(FaultAction::MissingFields {
            fields: vec!["expires_in".into(), "ext_expires_in".into()],
        })
        .on(Endpoint::Imds)
        .times(1),
    )
    .unwrap();
    let body: Value = imds_request(&emu, Duration::from_secs(10))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        body["access_token"].is_string() && body.get("expires_in").is_none(),
        "{body}"
    );

    emu.add_fault(
        Fault::new(FaultAction::Oversized {
            bytes: Some(3 << 20),
        })
        .on(Endpoint::Token)
        .times(1),
    )
    .unwrap();
    let bytes = secret_request(&emu, ARM)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len(), 3 << 20);
    assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
}

#[tokio::test]
async fn clock_skew_shifts_issued_tokens_only_for_matching_requests() {
    let emu = emulator().await;
    emu.add_fault(
        Fault::new(FaultAction::ClockSkew { secs: -7200 })
            .on(Endpoint::Token)
            .times(1),
    )
    .unwrap();
    let claims = |body: &Value| -> Value {
        let token = body["access_token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let skewed: Value = secret_request(&emu, ARM)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let normal: Value = secret_request(&emu, ARM)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (skewed, normal) = (claims(&skewed), claims(&normal));
    let shift = normal["iat"].as_i64().unwrap() - skewed["iat"].as_i64().unwrap();
    assert!((7195..=7205).contains(&shift), "{shift}");
    // Already expired by the real clock.
    assert!(skewed["exp"].as_i64().unwrap() < normal["iat"].as_i64().unwrap());
}

#[tokio::test]
async fn latency_delays_then_serves() {
    let emu = emulator().await;
    emu.add_fault(Fault::new(FaultAction::Latency { ms: 50 }).on(Endpoint::Jwks))
        .unwrap();
    let response = client_with_timeout(&emu, Duration::from_secs(10))
        .get(format!(
            "{}/{}/discovery/v2.0/keys",
            emu.https_url(),
            well_known::TENANT_ID
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["keys"].is_array());
    assert_eq!(last_logged(&emu).fault.as_deref(), Some("#1 latency 50 ms"));
}

#[tokio::test]
async fn the_control_plane_adds_lists_and_removes_faults() {
    let emu = emulator().await;
    let http = emu.http_client();
    let base = format!("{}/_emulator/faults", emu.https_url());
    let added: Value = http
        .post(&base)
        .json(&json!({
            "name": "imds down",
            "match": {"endpoint": "imds"},
            "action": {"kind": "status", "status": 503},
            "times": 3
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["id"], 1);
    let short: Value = http
        .post(&base)
        .json(&json!({"spec": "throttle@token,retry_after=2"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(short["id"], 2);
    let bad = http
        .post(&base)
        .json(&json!({"action": {"kind": "explode"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("invalid fault"));

    let response = imds_request(&emu, Duration::from_secs(10)).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(last_logged(&emu).fault.as_deref(), Some("#1 imds down"));

    let listed: Value = http.get(&base).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["hits"], 1);
    assert_eq!(listed[0]["remaining"], 2);

    let removed = http.delete(format!("{base}/2")).send().await.unwrap();
    assert_eq!(removed.status(), 200);
    let missing = http.delete(format!("{base}/2")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    http.delete(&base).send().await.unwrap();
    assert!(emu.faults().is_empty());
    // Control-plane requests are never faulted, even by a catch-all fault.
    emu.add_fault(Fault::new(FaultAction::Reset)).unwrap();
    let listed = http.get(&base).send().await.unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn faults_in_the_seed_apply_from_the_start_and_come_back_on_reset() {
    let mut seed = Seed::default_seed();
    seed.faults
        .push(Fault::parse_flag("status@app_service,status=502,times=1").unwrap());
    let toml = seed.to_toml();
    assert!(toml.contains("[[faults]]"), "{toml}");
    let seed = Seed::from_toml(&toml).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let emu = Emulator::builder()
        .state_dir(dir.path())
        .seed(seed)
        .https_port(0)
        .http_port(0)
        .service_fabric_port(0)
        .start()
        .await
        .unwrap();
    let app_service = || async {
        client_with_timeout(&emu, Duration::from_secs(10))
            .get(format!(
                "{}/msi/token?api-version=2019-08-01&resource=https://management.azure.com",
                emu.http_url()
            ))
            .header("X-IDENTITY-HEADER", well_known::APP_SERVICE_IDENTITY_HEADER)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(app_service().await, 502);
    assert_eq!(app_service().await, 200);
    emu.reset().unwrap();
    assert_eq!(app_service().await, 502);
}
