//! User sign-in round trips, one after another over one keep-alive HTTPS connection to an
//! in-process emulator:
//! - authorization code: `GET /authorize` (the sign-in page), `POST /login` (user name and
//!   password; the answer is the code), `POST /token` (redemption with PKCE);
//! - device code with automatic approval: `POST /devicecode`, then one `POST /token` poll.
//!
//! Each flow runs BENCH_ITERATIONS times (default 300) after a warm-up; p50, p99 and mean are
//! printed in milliseconds and written to `target/bench-results/sign_in.json`.
//!
//! Run: `cargo bench -p entra_emulator --bench sign_in`
#![allow(clippy::disallowed_methods)] // a benchmark measures real time

use std::time::{Duration, Instant};

use entra_emulator::stand_in::StandIn;
use entra_emulator::{Emulator, Seed, well_known};

#[path = "../tests/common/mod.rs"]
mod common;

const REDIRECT: &str = "http://localhost:7777/callback";
// RFC 7636 appendix B.
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn authorization_code(emu: &Emulator, http: &reqwest::Client, person: &StandIn) {
    let url = format!(
        "{}/{}/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri={REDIRECT}&scope=openid%20offline_access%20https://graph.microsoft.com/User.Read&state=s&prompt=login&code_challenge={CHALLENGE}&code_challenge_method=S256",
        emu.https_url(),
        well_known::TENANT_ID,
        well_known::WEB_APP_CLIENT_ID,
    );
    let outcome = person.sign_in(http, &url).await.expect("sign-in");
    let code = outcome.param("code").expect("a code");
    let response = http
        .post(emu.token_url(well_known::TENANT_ID))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", well_known::WEB_APP_CLIENT_ID),
            ("client_secret", well_known::WEB_APP_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("redemption");
    assert_eq!(response.status(), 200);
    response.bytes().await.expect("body");
}

async fn device_code(emu: &Emulator, http: &reqwest::Client) {
    let code: serde_json::Value = http
        .post(format!(
            "{}/organizations/oauth2/v2.0/devicecode",
            emu.https_url()
        ))
        .form(&[
            ("client_id", well_known::DEVELOPER_CLIENT_ID),
            ("scope", common::ARM),
        ])
        .send()
        .await
        .expect("device code")
        .json()
        .await
        .expect("json");
    let device_code = code["device_code"].as_str().expect("device_code");
    let response = http
        .post(emu.token_url("organizations"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", well_known::DEVELOPER_CLIENT_ID),
            ("device_code", device_code),
        ])
        .send()
        .await
        .expect("poll");
    assert_eq!(response.status(), 200);
    response.bytes().await.expect("body");
}

fn summary(name: &str, mut samples: Vec<Duration>) -> serde_json::Value {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |p: f64| ms(samples[((samples.len() - 1) as f64 * p).round() as usize]);
    let mean = ms(samples.iter().sum::<Duration>()) / samples.len() as f64;
    println!(
        "{name:<22} n={:<5} p50 {:>7.2} ms  p99 {:>7.2} ms  mean {:>7.2} ms",
        samples.len(),
        at(0.5),
        at(0.99),
        mean
    );
    serde_json::json!({ "n": samples.len(), "p50_ms": at(0.5), "p99_ms": at(0.99), "mean_ms": mean })
}

fn main() {
    let iterations = common::env_number("BENCH_ITERATIONS", 300) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = runtime.block_on(async {
        let emu = common::emulator().await;
        let mut seed = Seed::default_seed();
        seed.sign_in.auto_approve_device_codes = Some(well_known::USER_PRINCIPAL_NAME.into());
        emu.apply_seed(seed).expect("seed");
        let http = emu.http_client();
        let person = StandIn::new(well_known::USER_PRINCIPAL_NAME, well_known::USER_PASSWORD);
        for _ in 0..20 {
            authorization_code(&emu, &http, &person).await;
            device_code(&emu, &http).await;
        }
        let mut code_flow = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            authorization_code(&emu, &http, &person).await;
            code_flow.push(started.elapsed());
        }
        let mut device_flow = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            device_code(&emu, &http).await;
            device_flow.push(started.elapsed());
        }
        serde_json::json!({
            "authorization_code_round_trip": summary("authorization code", code_flow),
            "device_code_auto_approved": summary("device code (auto)", device_flow),
        })
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("sign_in.json"), results.to_string());
}
