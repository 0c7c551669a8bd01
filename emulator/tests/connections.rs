//! Idle connections cannot lock clients out: under a low open-files limit, hundreds of idle
//! connections (a leaky client pool) are closed after the idle timeout and new clients are
//! served; the connection cap keeps the emulator below the limit meanwhile.

#![cfg(unix)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, FREE_PORTS, wait_ready};

#[tokio::test]
async fn idle_connections_under_a_low_fd_limit_do_not_lock_out_new_clients() {
    let dir = tempfile::tempdir().unwrap();
    let ready_path = dir.path().join("ready.json");
    // `ulimit -n` in the shell lowers both the soft and the hard limit before exec.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 200 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(FREE_PORTS)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--ready-file")
        .arg(&ready_path)
        .args(["--idle-timeout-secs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_ready(&mut child, &ready_path);
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
