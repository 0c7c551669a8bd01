//! Running the developer tools: the [`Executor`] trait and the default implementation.

use std::ffi::OsStr;
use std::fmt::Debug;
use std::io;
use std::process::Output;
use std::sync::Arc;

/// An async command runner.
///
/// Implementations run `program` with `args`, each as its own argument (no shell), and return
/// its output. Dropping the returned future should stop the child process; the default
/// executor does.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait Executor: Send + Sync + Debug {
    /// Runs `program` with `args` and returns its output.
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> io::Result<Output>;
}

/// Creates a new [`Executor`]: `tokio::process` with feature `tokio`, else a standard-library
/// child process waited for on a helper thread. Both kill the child when the future is dropped.
pub fn new_executor() -> Arc<dyn Executor> {
    #[cfg(feature = "tokio")]
    {
        Arc::new(TokioExecutor)
    }
    #[cfg(not(feature = "tokio"))]
    {
        Arc::new(StdExecutor)
    }
}

fn command(program: &OsStr, args: &[&OsStr]) -> std::process::Command {
    let mut command = std::process::Command::new(program);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Runs children with `tokio::process`, killed on drop.
#[cfg(feature = "tokio")]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TokioExecutor;

#[cfg(feature = "tokio")]
#[async_trait::async_trait]
impl Executor for TokioExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> io::Result<Output> {
        let mut command = tokio::process::Command::from(command(program, args));
        command.kill_on_drop(true);
        command.output().await
    }
}

/// Runs children with `std::process`, waited for on a helper thread, killed on drop.
#[derive(Debug, Default, Clone, Copy)]
#[cfg_attr(feature = "tokio", allow(dead_code))]
pub(crate) struct StdExecutor;

/// Kills the child if the future that owns it is dropped before it exits.
#[cfg_attr(feature = "tokio", allow(dead_code))]
struct KillOnDrop(Arc<std::sync::Mutex<Option<std::process::Child>>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = child.kill();
        }
    }
}

#[async_trait::async_trait]
impl Executor for StdExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> io::Result<Output> {
        use std::io::Read;
        let mut child = command(program, args).spawn()?;
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let shared = Arc::new(std::sync::Mutex::new(Some(child)));
        let guard = KillOnDrop(shared.clone());
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
            let err_reader = std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(e) = stderr.as_mut() {
                    let _ = e.read_to_end(&mut buf);
                }
                buf
            });
            let mut out = Vec::new();
            if let Some(o) = stdout.as_mut() {
                let _ = o.read_to_end(&mut out);
            }
            let err = err_reader.join().unwrap_or_default();
            let status = loop {
                let mut slot = shared.lock().unwrap_or_else(|e| e.into_inner());
                match slot.as_mut().map(|c| c.try_wait()) {
                    Some(Ok(Some(status))) => {
                        slot.take();
                        break Ok(status);
                    }
                    Some(Ok(None)) => {}
                    Some(Err(e)) => break Err(e),
                    None => break Err(io::Error::other("the child process was released")),
                }
                drop(slot);
                std::thread::sleep(std::time::Duration::from_millis(5));
            };
            let _ = tx.send(status.map(|status| Output {
                status,
                stdout: out,
                stderr: err,
            }));
        });
        let result = rx
            .await
            .unwrap_or_else(|_| Err(io::Error::other("the process runner stopped")));
        drop(guard);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn std_executor_runs_a_program_with_literal_arguments() {
        let out = StdExecutor
            .run(
                OsStr::new("echo"),
                &[OsStr::new("a b"), OsStr::new("$HOME;x")],
            )
            .await
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a b $HOME;x\n");
    }

    #[tokio::test]
    async fn a_missing_program_is_not_found() {
        let err = StdExecutor
            .run(OsStr::new("/nonexistent/az"), &[])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
