//! An adapter in any language: a long-running program that speaks JSON lines.
//!
//! The protocol, which is all another language needs to implement:
//!
//! 1. The driver starts the program once (`command`, run from the workspace root).
//! 2. The program writes one line: `{"ready": true, "version": "...", "credentials": [kinds]}`,
//!    or `{"ready": false, "reason": "..."}` (e.g. its SDK is not installed) and exits; every
//!    scenario is then skipped with that reason.
//! 3. For each scenario the driver writes one [`RunRequest`] as a JSON line on the program's
//!    stdin; the program builds the credential with exactly `env` as its environment, calls
//!    `get_token(scopes)` and answers one [`RunResult`] JSON line on stdout:
//!    `{"token", "expires_on"}` or `{"error_kind": "unavailable"|"authentication"|"configuration",
//!    "message"}`, plus `"logs"`: everything its library logged (the driver scans them for
//!    secrets). It must trust the CA at `ca_cert_path` and answer within `timeout_ms`.
//! 4. At the end the driver closes stdin; the program exits.
//!
//! A program that dies or stays silent past the timeout fails that scenario and is restarted
//! for the next. When the driver runs cases concurrently, several copies of the program run,
//! each answering one request at a time ([`ProcessAdapter::with_instances`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use crate::adapter::{Adapter, RunRequest, RunResult};

/// How long the program may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

/// A JSON-lines adapter program.
#[derive(Debug)]
pub struct ProcessAdapter {
    name: String,
    command: Vec<String>,
    working_dir: PathBuf,
    /// One slot per concurrent copy of the program, each started on first use.
    slots: Vec<Mutex<Slot>>,
    hello: tokio::sync::OnceCell<Result<Hello, String>>,
}

/// A copy of the program (once started) and the CA of the emulator it last ran a case for.
#[derive(Debug, Default)]
struct Slot {
    running: Option<Running>,
    last_ca: Option<PathBuf>,
}

#[derive(Debug)]
struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

#[derive(Debug, Clone, Deserialize)]
struct Hello {
    ready: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    credentials: Vec<String>,
}

impl ProcessAdapter {
    /// An adapter named `name` that runs `command` (program and arguments) in `working_dir`.
    pub fn new(name: impl Into<String>, command: Vec<String>, working_dir: PathBuf) -> Self {
        Self {
            name: name.into(),
            command,
            working_dir,
            slots: vec![Mutex::default()],
            hello: tokio::sync::OnceCell::new(),
        }
    }

    /// The same with up to `instances` copies of the program answering at once.
    pub fn with_instances(mut self, instances: usize) -> Self {
        self.slots = (0..instances.max(1)).map(|_| Mutex::default()).collect();
        self
    }

    /// A free copy's slot, preferring the one that last ran a case for the same emulator (its
    /// CA), then one that has run none; all busy, the first one's, waited for. Keeping an
    /// emulator's cases on one copy lets a program keep state per emulator warm (the JavaScript
    /// adapter keeps a Node process per CA, which Node reads only when it starts).
    async fn slot(&self, ca: &Path) -> tokio::sync::MutexGuard<'_, Slot> {
        let prefer: [&dyn Fn(&Slot) -> bool; 3] = [
            &|slot| slot.last_ca.as_deref() == Some(ca),
            &|slot| slot.last_ca.is_none(),
            &|_| true,
        ];
        for wanted in prefer {
            for slot in &self.slots {
                if let Ok(guard) = slot.try_lock()
                    && wanted(&guard)
                {
                    return guard;
                }
            }
        }
        self.slots[0].lock().await
    }

    /// The version string the program reported, once started.
    pub fn version(&self) -> Option<String> {
        self.hello.get()?.as_ref().ok()?.version.clone()
    }

    async fn start(&self) -> Result<(Running, Hello), String> {
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| format!("adapter {}: empty command", self.name))?;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&self.working_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(HELLO_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| format!("{program} said nothing within {HELLO_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{program} exited without saying hello"))?;
        let hello: Hello = serde_json::from_str(&line)
            .map_err(|e| format!("{program}'s hello is not JSON ({e}): {line}"))?;
        Ok((
            Running {
                child,
                stdin,
                stdout: lines,
            },
            hello,
        ))
    }

    async fn exchange(running: &mut Running, request: &RunRequest) -> Result<RunResult, String> {
        let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
        line.push('\n');
        running
            .stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("writing the request: {e}"))?;
        running.stdin.flush().await.map_err(|e| e.to_string())?;
        let answer = running
            .stdout
            .next_line()
            .await
            .map_err(|e| format!("reading the result: {e}"))?
            .ok_or("the adapter exited")?;
        serde_json::from_str(&answer).map_err(|e| format!("result is not JSON ({e}): {answer}"))
    }
}

#[async_trait]
impl Adapter for ProcessAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    async fn check(&self) -> Result<(), String> {
        let hello = self
            .hello
            .get_or_init(|| async {
                let (running, hello) = self.start().await?;
                if hello.ready {
                    self.slots[0].lock().await.running = Some(running);
                    Ok(hello)
                } else {
                    Err(hello
                        .reason
                        .unwrap_or_else(|| "the adapter is not ready".to_string()))
                }
            })
            .await;
        hello.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    fn supports(&self, credential: &str) -> bool {
        match self.hello.get() {
            Some(Ok(hello)) => hello.credentials.iter().any(|c| c == credential),
            _ => false,
        }
    }

    async fn run(&self, request: &RunRequest) -> RunResult {
        let mut slot = self.slot(&request.ca_cert_path).await;
        slot.last_ca = Some(request.ca_cert_path.clone());
        let state = &mut slot.running;
        if state.is_none() {
            match self.start().await {
                Ok((running, _)) => *state = Some(running),
                Err(e) => return RunResult::adapter_failure(e),
            }
        }
        let Some(running) = state.as_mut() else {
            return RunResult::adapter_failure("the adapter is not running");
        };
        let timeout = Duration::from_millis(request.timeout_ms);
        match tokio::time::timeout(timeout, Self::exchange(running, request)).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => {
                if let Some(mut dead) = state.take() {
                    let _ = dead.child.kill().await;
                }
                RunResult::adapter_failure(format!("adapter {}: {e}", self.name))
            }
            Err(_) => {
                if let Some(mut stuck) = state.take() {
                    let _ = stuck.child.kill().await;
                }
                RunResult::adapter_failure(format!(
                    "adapter {} gave no result within {} ms (restarted)",
                    self.name, request.timeout_ms
                ))
            }
        }
    }
}
