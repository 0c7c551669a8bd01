//! Load benchmark: client-secret token requests per second on the HTTPS listener over 64
//! concurrent keep-alive connections, p50/p99 latency, next to `openssl speed rsa2048` signs per
//! second measured on the same machine in the same run (every token costs one RSA-2048
//! signature, so that is the ceiling a single core can reach).
//!
//! Then a fixed-count phase: BENCH_REQUESTS (default 10,000) token requests over the same
//! number of connections, BENCH_BATCHES times (default 5), with the emulator's resident memory
//! (VmRSS of the child process) before and after each batch, and the request log's length:
//! zero errors and a flat memory line show the log is capped and nothing else grows.
//!
//! Run: `cargo bench -p entra_emulator --bench token_throughput`
//! Knobs: BENCH_SECONDS (default 10), BENCH_CONNECTIONS (default 64), BENCH_REQUESTS (default
//! 10000), BENCH_BATCHES (default 5).
//! Results are printed and written to `target/bench-results/token_throughput.json`.

use std::process::{Command, Stdio};
use std::time::Duration;

use entra_emulator::{ReadyInfo, well_known};

#[path = "../tests/common/mod.rs"]
mod common;
mod load;

use load::{LoadResult, Stop, load, percentile};

/// Single-core RSA-2048 signs per second according to `openssl speed`.
fn openssl_signs_per_second() -> Option<f64> {
    let output = Command::new("openssl")
        .args(["speed", "-seconds", "3", "rsa2048"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.lines().find(|l| l.starts_with("rsa 2048 bits"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "rsa 2048 bits 0.000247s 0.000018s 4043.5 55909.0"
    fields.get(5)?.parse().ok()
}

fn main() {
    let seconds = common::env_number("BENCH_SECONDS", 10);
    let connections = common::env_number("BENCH_CONNECTIONS", 64) as usize;
    let openssl = openssl_signs_per_second();

    if let Ok(path) = std::env::var("BENCH_READY_FILE") {
        // Against an emulator that is already running (e.g. under a profiler).
        let ready = ReadyInfo::read(std::path::Path::new(&path)).expect("ready file");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        report(
            runtime.block_on(token_load(
                &ready,
                connections,
                Stop::After(Duration::from_secs(seconds)),
            )),
            connections,
            seconds,
            openssl,
        );
        return;
    }
    let state = tempfile::tempdir().expect("temp dir");
    let (mut child, ready) = common::start_binary(state.path());

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(token_load(
        &ready,
        connections,
        Stop::After(Duration::from_secs(seconds)),
    ));
    report(result, connections, seconds, openssl);

    // Fixed-count phase: errors and memory.
    let requests = common::env_number("BENCH_REQUESTS", 10_000);
    let rss = || rss_kib(child.id());
    let before = rss();
    let mut batches = Vec::new();
    let batch_count = common::env_number("BENCH_BATCHES", 5);
    for _ in 0..batch_count {
        let (count, errors, mut latencies, elapsed) =
            runtime.block_on(token_load(&ready, connections, Stop::Count(requests)));
        latencies.sort_unstable();
        batches.push(serde_json::json!({
            "requests": count,
            "errors": errors,
            "seconds": elapsed.as_secs_f64(),
            "p99_ms": percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            "rss_kib_after": rss(),
        }));
    }
    let (logged, capacity) = request_log(&ready);
    let _ = child.kill();
    let _ = child.wait();
    println!("fixed load: {requests} requests over {connections} connections, {batch_count} times");
    println!("  emulator RSS before     {} KiB", before.unwrap_or(0));
    for (i, b) in batches.iter().enumerate() {
        println!(
            "  batch {}               {} ok, {} errors, {:.2} s, p99 {:.2} ms, RSS after {} KiB",
            i + 1,
            b["requests"],
            b["errors"],
            b["seconds"].as_f64().unwrap_or(0.0),
            b["p99_ms"].as_f64().unwrap_or(0.0),
            b["rss_kib_after"]
        );
    }
    println!("  request log             {logged} entries (capacity {capacity})");
    let json = serde_json::json!({
        "requests_per_batch": requests,
        "connections": connections,
        "rss_kib_before": before,
        "batches": batches,
        "request_log_entries": logged,
        "request_log_capacity": capacity,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(
            dir.join("token_fixed_load.json"),
            serde_json::to_vec_pretty(&json).unwrap_or_default(),
        );
    }
}

/// Resident memory of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The request log's length and the configured capacity, from the control plane.
fn request_log(ready: &ReadyInfo) -> (usize, u64) {
    let ca = std::fs::read(&ready.ca_cert_path).expect("CA");
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA")])
        .no_proxy()
        .build()
        .expect("client");
    let get = |path: &str| -> serde_json::Value {
        client
            .get(format!("{}/_emulator/{path}", ready.https_url))
            .send()
            .and_then(|r| r.json())
            .unwrap_or_default()
    };
    let logged = get("requests").as_array().map_or(0, Vec::len);
    let capacity = get("config")["settings"]["request_log_capacity"]
        .as_u64()
        .unwrap_or(0);
    (logged, capacity)
}

fn report(result: LoadResult, connections: usize, seconds: u64, openssl: Option<f64>) {
    let (count, errors, mut latencies, elapsed) = result;
    latencies.sort_unstable();
    let rps = count as f64 / elapsed.as_secs_f64();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    println!("token_throughput: {connections} connections, {seconds} s");
    println!("  requests        {count} ({errors} errors)");
    println!("  throughput      {rps:.0} tokens/s");
    println!("  latency p50     {:.2} ms", p50.as_secs_f64() * 1e3);
    println!("  latency p99     {:.2} ms", p99.as_secs_f64() * 1e3);
    match openssl {
        Some(signs) => println!(
            "  openssl speed   {signs:.0} rsa2048 signs/s (one core) -> {:.0} % of the signing limit",
            100.0 * rps / signs
        ),
        None => println!("  openssl speed   unavailable (install openssl to compare)"),
    }
    let json = serde_json::json!({
        "connections": connections,
        "seconds": seconds,
        "requests": count,
        "errors": errors,
        "tokens_per_second": rps,
        "p50_ms": p50.as_secs_f64() * 1e3,
        "p99_ms": p99.as_secs_f64() * 1e3,
        "openssl_rsa2048_signs_per_second": openssl,
        "fraction_of_signing_limit": openssl.map(|s| rps / s),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(
            dir.join("token_throughput.json"),
            serde_json::to_vec_pretty(&json).unwrap_or_default(),
        );
    }
}

/// The client-secret token request every connection sends.
fn token_request(ready: &ReadyInfo) -> (String, String) {
    let authority = ready.https_url.trim_start_matches("https://").to_string();
    let body = serde_urlencoded::to_string([
        ("grant_type", "client_credentials"),
        ("client_id", well_known::SECRET_APP_CLIENT_ID),
        ("client_secret", well_known::CLIENT_SECRET),
        ("scope", "https://management.azure.com/.default"),
    ])
    .expect("form");
    let request = format!(
        "POST /{}/oauth2/v2.0/token HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        well_known::TENANT_ID,
        body.len()
    );
    (authority, request)
}

/// The token load against `ready`'s emulator.
async fn token_load(ready: &ReadyInfo, connections: usize, stop: Stop) -> LoadResult {
    let ca = std::fs::read(&ready.ca_cert_path).expect("CA");
    let (authority, request) = token_request(ready);
    load(&authority, &ca, request, connections, stop).await
}
