//! Idle connections cannot lock clients out: under a low open-files limit, hundreds of idle
//! connections (a leaky client pool) are closed after the idle timeout and new clients are
//! served; the connection cap keeps the emulator below the limit meanwhile.

#![cfg(unix)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use entra_emulator::ReadyInfo;

const BIN: &str = env!("CARGO_BIN_EXE_entra-emulator");

#[tokio::test]
async fn idle_connections_under_a_low_fd_limit_do_not_lock_out_new_clients() {
    let dir = tempfile::tempdir().unwrap();
    let ready_path = dir.path().join("ready.json");
    // `ulimit -n` in the shell lowers both the soft and the hard limit before exec.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 200 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args([
            "--https-port",
            "0",
            "--http-port",
            "0",
            "--service-fabric-port",
            "0",
        ])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--ready-file")
        .arg(&ready_path)
        .args(["--idle-timeout-secs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Ok(ready) = ReadyInfo::read(&ready_path) {
            break ready;
        }
        assert!(Instant::now() < deadline, "no ready file after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    let addr: std::net::SocketAddr = ready
        .http_url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    // More idle connections than the emulator has file descriptors (a connection the listen
    // backlog cannot take is skipped rather than waited for).
    let idle: Vec<std::net::TcpStream> = (0..300)
        .filter_map(|_| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        })
        .collect();
    assert!(idle.len() >= 250, "opened {} idle connections", idle.len());
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/_emulator/health", ready.http_url))
        .send()
        .await;
    let _ = child.kill();
    let _ = child.wait();
    let response = response.expect("a new client is served once idle connections are closed");
    assert_eq!(response.status(), 200);
    drop(idle);
}
