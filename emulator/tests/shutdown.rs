//! SIGTERM with requests in flight: the emulator stops accepting, lets them finish, removes its
//! ready files and exits cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use entra_emulator::well_known;

const IN_FLIGHT: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_and_removes_the_ready_files() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ready_path = dir.path().join("ready.json");
    let mut child = binary(&state)
        .arg("--ready-file")
        .arg(&ready_path)
        // Every token request takes a second: they are still in flight at SIGTERM.
        .args(["--fault", "latency@token,ms=1000", "--drain-secs", "20"])
        .env("ENTRA_EMULATOR_LOG", "entra_emulator=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = wait_ready(&mut child, &ready_path);
    assert_eq!(
        ready.pid,
        Some(child.id()),
        "the ready file names the process"
    );
    // Count the faults the emulator applies (one per request that reached it).
    let stderr = child.stderr.take().unwrap();
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("injecting a fault") {
                let _ = arrived_tx.send(());
            }
        }
    });
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ready.ca_cert_path).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .build()
        .unwrap();
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        ready.https_url,
        well_known::TENANT_ID
    );
    let requests: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let request = client
                .post(&url)
                .form(&secret_form(well_known::CLIENT_SECRET, ARM));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for _ in 0..IN_FLIGHT {
        arrived_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("every request reached the emulator");
    }
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    for request in requests {
        let status = request
            .await
            .unwrap()
            .expect("the request was answered, not cut");
        assert_eq!(status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the emulator did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    assert!(!ready_path.exists(), "the --ready-file is removed");
    assert!(
        !state.join("ready.json").exists(),
        "STATE_DIR/ready.json is removed"
    );
}
