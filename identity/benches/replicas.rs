//! Replicas cold-started together: N processes (default 16 and 64) each build a
//! `ClientSecretCredential` and ask for the same token at the same instant, against one
//! emulator, with the shared Redis cache, without it, and with Redis killed as they start.
//! Reports the token requests the emulator received (goal with the cache: one), the p50/p99
//! time to the first token in each replica, the shared-hit latency (a fresh credential in a warm
//! replica reading the token from Redis), and failed callers (goal: none).
//!
//! Run: `cargo bench -p azure_identity --bench replicas` (needs `redis-server` on PATH).
//! Knob: BENCH_REPLICAS (e.g. "16,64").
#![allow(clippy::disallowed_methods)] // a benchmark measures real time and spawns processes

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, RedisTokenStore, SharedTokenCache,
};
use entra_emulator::well_known;

#[path = "../tests/support/mod.rs"]
mod support;
use support::RedisServer;

const ARM: &str = "https://management.azure.com/.default";

fn unix_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn credential(authority: &str, ca: &str, redis: Option<&str>) -> Arc<ClientSecretCredential> {
    let cert = reqwest::Certificate::from_pem(&std::fs::read(ca).expect("CA")).expect("PEM");
    let http = reqwest::Client::builder()
        .tls_certs_only([cert])
        .no_proxy()
        .build()
        .expect("client");
    let mut custom = azure_core::cloud::CustomConfiguration::default();
    custom.authority_host = authority.to_string();
    let client_options = ClientOptions {
        cloud: Some(Arc::new(azure_core::cloud::CloudConfiguration::from(
            custom,
        ))),
        transport: Some(Transport::new(Arc::new(http))),
        ..Default::default()
    };
    ClientSecretCredential::new(
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID.into(),
        well_known::CLIENT_SECRET.into(),
        Some(ClientSecretCredentialOptions {
            client_options,
            shared_token_cache: redis.map(|url| {
                SharedTokenCache::new(Arc::new(RedisTokenStore::new(url).expect("redis url")))
            }),
            ..Default::default()
        }),
    )
    .expect("credential")
}

/// One replica: wait for the start instant, get a token, then a fresh credential's shared hit.
fn child() {
    let var = |n: &str| std::env::var(n).expect(n);
    let (authority, ca) = (var("REPLICA_AUTHORITY"), var("REPLICA_CA"));
    let redis = std::env::var("REPLICA_REDIS").ok();
    let start: u128 = var("REPLICA_START_MS").parse().expect("start");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    runtime.block_on(async {
        let first = credential(&authority, &ca, redis.as_deref());
        let wait = start.saturating_sub(unix_millis());
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        let started = Instant::now();
        let ok = first.get_token(&[ARM], None).await.is_ok();
        let first_ms = started.elapsed().as_secs_f64() * 1000.0;
        let again = credential(&authority, &ca, redis.as_deref());
        let started = Instant::now();
        let _ = again.get_token(&[ARM], None).await;
        let hit_ms = started.elapsed().as_secs_f64() * 1000.0;
        println!("{{\"ok\":{ok},\"first_ms\":{first_ms},\"hit_ms\":{hit_ms}}}");
    });
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// Starts `n` replicas together; `kill` stops Redis as they start.
fn round(
    emu: &entra_emulator::Emulator,
    n: usize,
    redis: Option<&str>,
    kill: Option<&mut RedisServer>,
) -> serde_json::Value {
    emu.clear_requests();
    let start = unix_millis() + 1500;
    let exe = std::env::current_exe().expect("exe");
    let children: Vec<Child> = (0..n)
        .map(|_| {
            let mut c = Command::new(&exe);
            c.env("REPLICA_CHILD", "1")
                .env("REPLICA_AUTHORITY", emu.https_url())
                .env("REPLICA_CA", emu.ca_cert_path())
                .env("REPLICA_START_MS", start.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null());
            if let Some(url) = redis {
                c.env("REPLICA_REDIS", url);
            }
            c.spawn().expect("replica")
        })
        .collect();
    if let Some(redis) = kill {
        std::thread::sleep(Duration::from_millis((start - unix_millis()) as u64));
        redis.kill();
    }
    let (mut firsts, mut hits, mut failed) = (Vec::new(), Vec::new(), 0);
    for child in children {
        let out = child.wait_with_output().expect("replica output");
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if line["ok"] != true {
            failed += 1;
        }
        firsts.push(line["first_ms"].as_f64().unwrap_or(f64::NAN));
        hits.push(line["hit_ms"].as_f64().unwrap_or(f64::NAN));
    }
    firsts.sort_by(f64::total_cmp);
    hits.sort_by(f64::total_cmp);
    let requests = emu
        .requests()
        .iter()
        .filter(|r| r.form_field("grant_type") == Some("client_credentials"))
        .count();
    serde_json::json!({
        "replicas": n, "token_requests": requests, "failed": failed,
        "first_token_p50_ms": percentile(&firsts, 0.5), "first_token_p99_ms": percentile(&firsts, 0.99),
        "second_credential_p50_ms": percentile(&hits, 0.5),
    })
}

fn main() {
    if std::env::var_os("REPLICA_CHILD").is_some() {
        return child();
    }
    let counts: Vec<usize> = std::env::var("BENCH_REPLICAS")
        .unwrap_or_else(|_| "16,64".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("rt");
    let emu = runtime
        .block_on(entra_emulator::Emulator::start())
        .expect("emulator");
    let mut results = Vec::new();
    for n in counts {
        let mut server = RedisServer::start().expect("redis-server on PATH");
        let url = server.url.clone();
        for (name, result) in [
            ("shared cache", round(&emu, n, Some(&url), None)),
            ("no shared cache", round(&emu, n, None, None)),
            (
                "Redis killed at start",
                round(&emu, n, Some(&url), Some(&mut server)),
            ),
        ] {
            println!("{name:<22} {result}");
            results.push(serde_json::json!({ "case": name, "result": result }));
        }
        drop(server);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("replicas.json"),
        serde_json::Value::Array(results).to_string(),
    );
    runtime.block_on(emu.shutdown());
}
