//! Soak: N minutes of mixed traffic against the `entra-emulator` binary — client-credentials
//! tokens, IMDS and App Service managed identity, discovery — with faults switched on and off
//! through the control plane every few seconds. Each minute it reports requests, unexpected
//! errors, the emulator's resident memory and open file descriptors, and the request log's
//! length; a growing RSS or fd count is a leak.
//!
//! Run: `SOAK_MINUTES=30 cargo bench -p entra_emulator --bench soak` (default 1 minute,
//! `SOAK_WORKERS` concurrent clients, default 16).
#![allow(clippy::disallowed_methods)] // a benchmark measures real time

use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use entra_emulator::{ReadyInfo, well_known};

#[path = "../tests/common/mod.rs"]
mod common;

/// Starts the binary on free ports; waits (bounded) for its ready file.
// The child is returned and reaped by `main`.
#[allow(clippy::zombie_processes)]
fn start(state: &std::path::Path) -> (Child, ReadyInfo) {
    let ready_path = state.join("ready-soak.json");
    let mut child = common::binary(&state.join("state"))
        .arg("--ready-file")
        .arg(&ready_path)
        .env("ENTRA_EMULATOR_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("emulator starts");
    let ready = common::wait_ready(&mut child, &ready_path);
    (child, ready)
}

fn proc_value(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    unexpected: AtomicU64,
}

/// One client's loop: a token, an IMDS token, an App Service token, discovery; any transport
/// error or status other than success or an injected 503 counts as unexpected.
async fn worker(ready: Arc<ReadyInfo>, counters: Arc<Counters>, until: Instant) {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ready.ca_cert_path).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let token_url = format!(
        "{}/{}/oauth2/v2.0/token",
        ready.https_url,
        well_known::TENANT_ID
    );
    let resource = "resource=https%3A%2F%2Fmanagement.azure.com";
    let imds = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&{resource}",
        ready.http_url
    );
    let app_service = format!(
        "{}/msi/token?api-version=2019-08-01&{resource}",
        ready.http_url
    );
    let discovery = format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        ready.https_url,
        well_known::TENANT_ID
    );
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", well_known::SECRET_APP_CLIENT_ID),
        ("client_secret", well_known::CLIENT_SECRET),
        ("scope", "https://management.azure.com/.default"),
    ];
    while Instant::now() < until {
        let requests = [
            http.post(&token_url).form(&form),
            http.get(&imds).header("metadata", "true"),
            http.get(&app_service)
                .header("x-identity-header", well_known::APP_SERVICE_IDENTITY_HEADER),
            http.get(&discovery),
        ];
        for request in requests {
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let ok = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let _ = response.bytes().await;
                    status < 300 || status == 503
                }
                Err(_) => false,
            };
            if !ok {
                counters.unexpected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Every five seconds: a burst of 503s on IMDS, then all faults cleared.
async fn fault_toggler(ready: Arc<ReadyInfo>, until: Instant) {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ready.ca_cert_path).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .build()
        .unwrap();
    let faults = format!("{}/_emulator/faults", ready.https_url);
    let mut on = false;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let request = if on {
            http.delete(&faults)
        } else {
            http.post(&faults)
                .json(&serde_json::json!({"spec": "status@imds,status=503,times=20"}))
        };
        let _ = request.send().await;
        on = !on;
    }
}

fn main() {
    let minutes = common::env_number("SOAK_MINUTES", 1);
    let workers = common::env_number("SOAK_WORKERS", 16);
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, ready) = start(dir.path());
    let pid = child.id();
    let ready = Arc::new(ready);
    let counters = Arc::new(Counters::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let until = started + Duration::from_secs(minutes * 60);
    println!("soak: {minutes} min, {workers} clients, faults toggled every 5 s");
    println!("minute  requests  unexpected  RSS KiB  fds  threads");
    runtime.block_on(async {
        for _ in 0..workers {
            tokio::spawn(worker(ready.clone(), counters.clone(), until));
        }
        tokio::spawn(fault_toggler(ready.clone(), until));
        for minute in 1..=minutes {
            let mark = started + Duration::from_secs(minute * 60);
            tokio::time::sleep(mark.saturating_duration_since(Instant::now())).await;
            println!(
                "{minute:>6}  {:>8}  {:>10}  {:>7}  {:>3}  {:>7}",
                counters.requests.load(Ordering::Relaxed),
                counters.unexpected.load(Ordering::Relaxed),
                proc_value(pid, "VmRSS:").unwrap_or_default(),
                open_fds(pid).unwrap_or_default(),
                proc_value(pid, "Threads:").unwrap_or_default(),
            );
        }
    });
    let _ = child.kill();
    let _ = child.wait();
}
