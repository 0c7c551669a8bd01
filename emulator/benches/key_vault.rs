//! What checking tokens costs a resource: authenticated `GET /secrets/{name}` on the emulator's
//! Key Vault next to an unauthenticated GET of the same size class (OpenID discovery, which
//! is logged and rendered like the vault's answers) on the main HTTPS listener, both over 64
//! keep-alive TLS connections, alternating A/B/A/B so that drift hits both alike.
//!
//! The vault verifies each token's signature once and remembers it for a minute; every
//! request still checks lifetime, audience, issuer, revocation and the caller's role.
//!
//! Run: `cargo bench -p entra_emulator --bench key_vault`
//! Knobs: BENCH_SECONDS per round (default 5), BENCH_CONNECTIONS (default 64), BENCH_ROUNDS
//! (default 2). Results are printed and written to `target/bench-results/key_vault.json`.

use std::time::Duration;

use entra_emulator::{ReadyInfo, well_known};

#[path = "../tests/common/mod.rs"]
mod common;
mod load;

use load::{LoadResult, Stop, load, percentile};

fn main() {
    let seconds = common::env_number("BENCH_SECONDS", 5);
    let connections = common::env_number("BENCH_CONNECTIONS", 64) as usize;
    let rounds = common::env_number("BENCH_ROUNDS", 2);
    let state = tempfile::tempdir().expect("temp dir");
    let (mut child, ready) = common::start_binary(state.path());
    let ca = std::fs::read(&ready.ca_cert_path).expect("CA");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let token = runtime.block_on(vault_token(&ready, &ca));
    let vault = ready.key_vaults[well_known::KEY_VAULT_NAME]
        .trim_start_matches("https://")
        .to_string();
    runtime.block_on(put_secret(&vault, &ca, &token));
    let authenticated = format!(
        "GET /secrets/bench?api-version=7.5 HTTP/1.1\r\nHost: {vault}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let main = ready.https_url.trim_start_matches("https://").to_string();
    let open = format!(
        "GET /{}/v2.0/.well-known/openid-configuration HTTP/1.1\r\nHost: {main}\r\n\r\n",
        well_known::TENANT_ID
    );

    let stop = Stop::After(Duration::from_secs(seconds));
    let mut vault_runs = Vec::new();
    let mut open_runs = Vec::new();
    for _ in 0..rounds {
        vault_runs.push(runtime.block_on(load(
            &vault,
            &ca,
            authenticated.clone(),
            connections,
            stop,
        )));
        open_runs.push(runtime.block_on(load(&main, &ca, open.clone(), connections, stop)));
    }
    let _ = child.kill();
    let _ = child.wait();

    let vault = summary(vault_runs);
    let open = summary(open_runs);
    let slower = 1.0 - vault.rps / open.rps;
    println!("key_vault: {connections} connections, {rounds} rounds of {seconds} s each");
    for (name, s) in [
        ("authenticated GET secret", &vault),
        ("unauthenticated discovery", &open),
    ] {
        println!(
            "  {name:26} {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  ({} ok, {} errors)",
            s.rps, s.p50_ms, s.p99_ms, s.count, s.errors
        );
    }
    println!(
        "  token checks cost        {:.1} % of throughput (goal: at most 30 %)",
        slower * 100.0
    );
    let json = serde_json::json!({
        "connections": connections,
        "seconds_per_round": seconds,
        "rounds": rounds,
        "authenticated_get_secret": vault.json(),
        "unauthenticated_discovery": open.json(),
        "throughput_cost_fraction": slower,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(
            dir.join("key_vault.json"),
            serde_json::to_vec_pretty(&json).unwrap_or_default(),
        );
    }
}

struct Summary {
    count: u64,
    errors: u64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Summary {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.count,
            "errors": self.errors,
            "requests_per_second": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
        })
    }
}

fn summary(runs: Vec<LoadResult>) -> Summary {
    let mut latencies = Vec::new();
    let (mut count, mut errors, mut seconds) = (0, 0, 0.0);
    for (c, e, l, elapsed) in runs {
        count += c;
        errors += e;
        seconds += elapsed.as_secs_f64();
        latencies.extend(l);
    }
    latencies.sort_unstable();
    Summary {
        count,
        errors,
        rps: count as f64 / seconds,
        p50_ms: percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        p99_ms: percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    }
}

fn client(ca: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca).expect("CA")])
        .no_proxy()
        .build()
        .expect("client")
}

async fn vault_token(ready: &ReadyInfo, ca: &[u8]) -> String {
    let body: serde_json::Value = client(ca)
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            ready.https_url,
            well_known::TENANT_ID
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", well_known::SECRET_APP_CLIENT_ID),
            ("client_secret", well_known::CLIENT_SECRET),
            ("scope", well_known::KEY_VAULT_SCOPE),
        ])
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("token")
        .json()
        .await
        .expect("JSON");
    body["access_token"].as_str().expect("token").to_string()
}

async fn put_secret(vault: &str, ca: &[u8], token: &str) {
    client(ca)
        .put(format!("https://{vault}/secrets/bench?api-version=7.5"))
        .bearer_auth(token)
        .json(&serde_json::json!({"value": "a secret value of ordinary length"}))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("set secret");
}
