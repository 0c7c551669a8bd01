//! The harness itself: the whole suite passes through the Rust adapter; a deliberately wrong
//! scenario yields a readable report of what differed; the secret scan catches a leak; an
//! adapter that is not ready skips every scenario with its reason.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use conformance::adapter::{Adapter, RunRequest, RunResult};
use conformance::driver::{RunSettings, run_all};
use conformance::process_adapter::ProcessAdapter;
use conformance::report::{Report, Status};
use conformance::rust_adapter::RustAdapter;
use conformance::scenario::load_dir;
use conformance::target::Target;

/// Links named az and azd to the conformance binary (which acts as them under those names).
fn bin_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["az", "azd"] {
        let _ = std::fs::remove_file(bin.join(name));
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_conformance"), bin.join(name)).unwrap();
    }
    bin
}

fn settings(dir: &Path) -> RunSettings {
    RunSettings {
        bin_dir: Some(bin_dir(dir)),
        timeout_ms: 60_000,
    }
}

fn report(results: Vec<conformance::report::CaseResult>, adapters: &[&str]) -> Report {
    Report {
        adapters: adapters.iter().map(|a| a.to_string()).collect(),
        target: "test".into(),
        results,
        total_millis: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_passes_through_the_rust_adapter() {
    let scenarios = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).unwrap();
    assert!(scenarios.len() >= 80, "{} scenarios", scenarios.len());
    let target = Target::embedded().await.unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let results = run_all(
        &target,
        &scenarios,
        &[&RustAdapter],
        &settings(scratch.path()),
    )
    .await;
    let report = report(results, &["rust"]);
    let totals = report.totals();
    assert_eq!(totals.fail, 0, "{}", report.table());
    // Skipped: the cases a scenario skips for Rust, and kinds only another adapter implements
    // (the real Azure CLI's `azure_cli_login`).
    let skipped = scenarios
        .iter()
        .filter(|s| s.skip.contains_key("rust") || !RustAdapter.supports(&s.credential))
        .count();
    assert!(
        skipped < scenarios.len() / 5,
        "{skipped} of {} skipped",
        scenarios.len()
    );
    assert_eq!(totals.pass, scenarios.len() - skipped, "{}", report.table());
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_scenario_reports_what_differed() {
    let dir = tempfile::tempdir().unwrap();
    // Wrong claim, wrong request count, and an error expected where a token comes back.
    write(
        dir.path(),
        "wrong/claims.toml",
        r#"
description = "Deliberately wrong: the token is the secret app's, not this one."
credential = "client_secret"
profile = "client_secret"

[expect]
outcome = "token"
claims = { appid = "99999999-0000-0000-0000-000000000000" }

[[expect.requests]]
endpoint = "token"
count = 2
"#,
    );
    write(
        dir.path(),
        "wrong/outcome.toml",
        r#"
description = "Deliberately wrong: expects an error, gets a token."
credential = "client_secret"
profile = "client_secret"

[expect]
outcome = "error"
error_kind = "authentication"
"#,
    );
    write(
        dir.path(),
        "wrong/message.toml",
        r#"
description = "Deliberately wrong: the message fragment and the kind differ."
credential = "client_secret"
profile = "client_secret"
options = { secret = "not-the-right-secret-value" }

[expect]
outcome = "error"
error_kind = "unavailable"
message_contains = ["AADSTS12345"]
"#,
    );
    let scenarios = load_dir(dir.path()).unwrap();
    let target = Target::embedded().await.unwrap();
    let results = run_all(&target, &scenarios, &[&RustAdapter], &settings(dir.path())).await;
    let report = report(results, &["rust"]);
    assert_eq!(report.totals().fail, 3);
    let find = |name: &str| {
        report
            .results
            .iter()
            .find(|r| r.scenario == name)
            .unwrap()
            .differences
            .join("\n")
    };
    let claims = find("wrong/claims");
    assert!(
        claims.contains(r#"claim appid: expected "99999999-0000-0000-0000-000000000000", got "22222222-2222-2222-2222-222222222222""#),
        "{claims}"
    );
    assert!(
        claims.contains("expected 2 token request(s), saw 1"),
        "{claims}"
    );
    assert!(
        find("wrong/outcome").contains("expected an error, got a token"),
        "{}",
        find("wrong/outcome")
    );
    let message = find("wrong/message");
    assert!(
        message.contains("error kind: expected unavailable, got authentication"),
        "{message}"
    );
    assert!(message.contains("message lacks 'AADSTS12345'"), "{message}");
    assert!(
        message.contains("AADSTS7000215"),
        "the actual message is shown: {message}"
    );
    // The same differences reach the table and the Markdown.
    let table = report.table();
    assert!(table.contains("FAIL wrong/claims [rust]"), "{table}");
    assert!(table.contains("claim appid: expected"), "{table}");
    let markdown = report.markdown();
    assert!(markdown.contains("### `wrong/claims` (rust)"), "{markdown}");
    assert!(
        markdown.contains("| `wrong/outcome` | client_secret | FAIL"),
        "{markdown}"
    );
    let out = dir.path().join("out");
    report.write(&out).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["results"][0]["status"], "fail");
}

/// An adapter that succeeds but logs the secret it was given.
struct Leaky;

#[async_trait]
impl Adapter for Leaky {
    fn name(&self) -> &str {
        "leaky"
    }
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
    fn supports(&self, _: &str) -> bool {
        true
    }
    async fn run(&self, request: &RunRequest) -> RunResult {
        let mut result = RustAdapter.run(request).await;
        result.logs.push_str(&format!(
            "DEBUG sending client_secret={}\n",
            request.env["AZURE_CLIENT_SECRET"]
        ));
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_scan_fails_a_scenario_whose_logs_leak() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "leak.toml",
        r#"
description = "A token; the adapter logs the secret."
credential = "client_secret"
profile = "client_secret"

[expect]
outcome = "token"
"#,
    );
    let scenarios = load_dir(dir.path()).unwrap();
    let target = Target::embedded().await.unwrap();
    let results = run_all(&target, &scenarios, &[&Leaky], &settings(dir.path())).await;
    assert_eq!(results[0].status, Status::Fail);
    let text = results[0].differences.join("\n");
    assert!(
        text.contains("secret leak: AZURE_CLIENT_SECRET appears in the logs or error: DEBUG sending client_secret=<SECRET>"),
        "{text}"
    );
    assert!(!text.contains("emulator-client-secret"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_is_not_ready_skips_everything_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "one.toml",
        "description = \"x\"\ncredential = \"environment\"\n[expect]\noutcome = \"error\"\n",
    );
    let scenarios = load_dir(dir.path()).unwrap();
    let target = Target::embedded().await.unwrap();
    let missing = ProcessAdapter::new(
        "go",
        vec![
            "sh".into(),
            "-c".into(),
            r#"echo '{"ready": false, "reason": "the Go SDK is not installed"}'"#.into(),
        ],
        dir.path().to_path_buf(),
    );
    let results = run_all(&target, &scenarios, &[&missing], &settings(dir.path())).await;
    assert_eq!(results[0].status, Status::Skip);
    assert!(
        results[0].differences[0].contains("the Go SDK is not installed"),
        "{:?}",
        results[0].differences
    );
    // A command that does not exist is a skip with the reason too, not a crash.
    let absent = ProcessAdapter::new(
        "absent",
        vec!["/nonexistent/adapter".into()],
        dir.path().to_path_buf(),
    );
    let results = run_all(&target, &scenarios, &[&absent], &settings(dir.path())).await;
    assert_eq!(results[0].status, Status::Skip);
    assert!(
        results[0].differences[0].contains("cannot start"),
        "{:?}",
        results[0].differences
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_emulator_is_targeted_through_its_ready_file() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = entra_emulator::Emulator::builder()
        .state_dir(dir.path().join("state"))
        .start()
        .await
        .unwrap();
    let ready_file = dir.path().join("ready.json");
    emulator.write_ready_file(&ready_file).unwrap();
    let target = Target::from_ready_file(&ready_file).await.unwrap();
    assert_eq!(target.ready.https_url, emulator.https_url());
    let all = load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).unwrap();
    let scenarios: Vec<_> = all
        .into_iter()
        .filter(|s| {
            s.name.starts_with("client_secret/")
                || s.name.starts_with("managed_identity/imds")
                || s.name.starts_with("azure_cli/")
        })
        .collect();
    let results = run_all(&target, &scenarios, &[&RustAdapter], &settings(dir.path())).await;
    let report = report(results, &["rust"]);
    assert_eq!(report.totals().fail, 0, "{}", report.table());
    assert!(report.totals().pass >= 20, "{}", report.table());
    // The scenarios' requests reached this emulator (the log holds the last scenario's).
    assert!(!emulator.requests().is_empty());

    let err = Target::from_ready_file(&dir.path().join("missing.json"))
        .await
        .unwrap_err();
    assert!(err.contains("reading the ready file"), "{err}");
}
