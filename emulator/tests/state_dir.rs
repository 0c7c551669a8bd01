//! One emulator per state directory: a second one is refused with the holder's PID, in process
//! and across processes; the directory it creates is private to its owner.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use entra_emulator::{Emulator, StartError};

#[tokio::test]
async fn a_second_emulator_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = Emulator::builder().state_dir(&state).start().await.unwrap();
    let Err(error) = Emulator::builder().state_dir(&state).start().await else {
        panic!("a second emulator started on a directory in use");
    };
    assert!(
        matches!(error, StartError::InUse { pid: Some(pid), .. } if pid == std::process::id()),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains("pass another --state-dir")
            && text.contains(&format!("PID {}", std::process::id())),
        "{text}"
    );
    drop(first);
    // Released with the emulator: the directory can be used again.
    Emulator::builder().state_dir(&state).start().await.unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_state_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("new-state");
    let _emu = Emulator::builder().state_dir(&state).start().await.unwrap();
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_second_process_is_told_which_pid_holds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let ready = dir.path().join("ready.json");
    let binary = env!("CARGO_BIN_EXE_entra-emulator");
    let ports = [
        "--https-port",
        "0",
        "--http-port",
        "0",
        "--service-fabric-port",
        "0",
    ];
    let mut first = Command::new(binary)
        .args(ports)
        .arg("--state-dir")
        .arg(&state)
        .arg("--ready-file")
        .arg(&ready)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) for the first emulator to be listening.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first emulator did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = Command::new(binary)
        .args(ports)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("in use by PID {}", first.id())),
        "{stderr}"
    );
}
