//! What the CLI credentials share: finding the program on `PATH` (never through a shell),
//! validating arguments, running with a time bound, and classifying failures.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use azure_core::error::{Error, ErrorKind};
use futures::FutureExt;

use super::executor::Executor;
use crate::errors::{credential_error, unavailable};
use crate::os::Os;

/// How long a CLI may take before it is stopped (Python, Go and JS use the same bound).
pub(crate) const DEFAULT_TIMEOUT: time::Duration = time::Duration::seconds(10);

/// Finds `name` on the injected `PATH`, the way a shell would, but without one.
pub(crate) fn find_program(os: &Os, name: &str) -> Option<PathBuf> {
    let path = os.var("PATH")?;
    let separator = if cfg!(windows) { ';' } else { ':' };
    let candidates: &[&str] = if cfg!(windows) {
        &[".cmd", ".exe", ""]
    } else {
        &[""]
    };
    path.split(separator)
        .filter(|dir| !dir.is_empty())
        .flat_map(|dir| {
            candidates
                .iter()
                .map(move |ext| PathBuf::from(dir).join(format!("{name}{ext}")))
        })
        .find(|candidate| os.fs.is_file(candidate))
}

/// Upstream's scope rule: non-empty; alphanumeric or `. - _ : /`.
pub(crate) fn validate_scope(scope: &str) -> azure_core::Result<()> {
    let ok = !scope.is_empty()
        && scope
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/'));
    if ok {
        Ok(())
    } else {
        Err(credential_error(format!("invalid scope {scope}")))
    }
}

/// Upstream's subscription rule: non-empty; alphanumeric, `. - _` or space.
pub(crate) fn validate_subscription(subscription: &str) -> azure_core::Result<()> {
    let ok = !subscription.is_empty()
        && subscription
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' '));
    if ok {
        Ok(())
    } else {
        Err(credential_error(format!(
            "invalid subscription {subscription}. If this is the name of a subscription, use its ID instead"
        )))
    }
}

/// Replaces anything that looks like a token (a JWT) in CLI output before it goes into an
/// error.
pub(crate) fn redact(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .map(|word| {
            let trimmed =
                word.trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'');
            if trimmed.starts_with("eyJ") && trimmed.matches('.').count() >= 2 {
                word.replacen(trimmed, "<redacted token>", 1)
            } else {
                word.to_string()
            }
        })
        .collect()
}

/// Runs `program` with `args` within `timeout`. A missing program means the tool is not
/// installed (unavailable); a timeout stops the child (dropping the run kills it).
pub(crate) async fn run(
    executor: &Arc<dyn Executor>,
    os: &Os,
    tool: &str,
    program: &std::path::Path,
    args: &[String],
    timeout: time::Duration,
) -> azure_core::Result<Output> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    tracing::debug!(program = %program.display(), args = ?args, "running developer tool");
    let run = executor.run(program.as_os_str(), &args).fuse();
    let sleep = os.sleep.sleep(timeout).fuse();
    futures::pin_mut!(run, sleep);
    futures::select! {
        output = run => output.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                unavailable(format!("{tool} not found on PATH"))
            } else {
                Error::with_error(ErrorKind::Io, e, format!("failed to run {}", program.display()))
            }
        }),
        () = sleep => Err(credential_error(format!(
            "{tool} did not finish within {} seconds and was stopped; check that it is signed in and can reach Azure",
            timeout.whole_seconds()
        ))),
    }
}

/// A developer tool: its program name and what to tell users when it is not installed.
#[derive(Debug)]
pub(crate) struct Tool {
    pub(crate) program: &'static str,
    pub(crate) not_found: &'static str,
}

/// Finds `tool` on `PATH`, runs it, and returns its stdout; a non-zero exit is turned into an
/// error by `classify`.
pub(crate) async fn run_tool(
    tool: &Tool,
    executor: &Arc<dyn Executor>,
    os: &Os,
    args: &[String],
    timeout: time::Duration,
    classify: fn(&Output) -> Error,
) -> azure_core::Result<Vec<u8>> {
    let program = find_program(os, tool.program).ok_or_else(|| unavailable(tool.not_found))?;
    let output = run(executor, os, tool.program, &program, args, timeout).await?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(classify(&output))
    }
}
