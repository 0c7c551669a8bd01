//! The JavaScript adapter's warm children: one Node process runs case after case, each as it
//! would run in a fresh process. The proof is a sequence that fails when state carries over:
//! managed identity from App Service, Azure Arc, IMDS and Service Fabric one after another
//! (msal-node remembers the source it detected in a static; @azure/identity caches the
//! credential's choice), among client-secret, environment and workload-identity cases. The
//! driver keeps an emulator's cases on one copy of an adapter program; and a child that a case
//! leaves changed (a server listening, a new global or process listener) retires.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use conformance::adapter::{Adapter, RunRequest};
use conformance::driver::{RunSettings, run_all};
use conformance::process_adapter::ProcessAdapter;
use conformance::report::Status;
use conformance::scenario::load_dir;
use conformance::target::Target;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Node and @azure/identity (installed by `npm ci` in tests/real-clients/js), or why not (a
/// failure under CI).
fn node() -> Option<PathBuf> {
    let node = find("node");
    let package = workspace().join("tests/real-clients/js/node_modules/@azure/identity");
    if node.is_none() || !package.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install Node and run `npm ci` in tests/real-clients/js before the tests"
        );
        eprintln!("skipped: no node, or no `npm ci` in tests/real-clients/js");
        return None;
    }
    node
}

/// The JavaScript adapter, tracing its children to `trace`, with `vars` added to its environment.
fn js_adapter(node: &Path, trace: &Path, vars: &[String]) -> ProcessAdapter {
    let mut command = vec![
        "env".to_string(),
        format!("CONFORMANCE_JS_TRACE={}", trace.display()),
    ];
    command.extend(vars.iter().cloned());
    command.push(node.display().to_string());
    command.push("conformance/adapters/js/adapter.mjs".into());
    ProcessAdapter::new("js", command, workspace())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_warm_node_process_runs_case_after_case_as_if_each_were_fresh() {
    let Some(node) = node() else { return };
    let all = load_dir(&workspace().join("conformance/scenarios")).unwrap();
    let sequence = [
        "managed_identity/app_service_system_assigned",
        "managed_identity/azure_arc_system_assigned",
        "managed_identity/imds_system_assigned",
        "managed_identity/imds_user_assigned_client_id",
        "managed_identity/service_fabric_system_assigned",
        "client_secret/token_for_arm",
        "client_secret/wrong_secret",
        "environment/secret",
        "workload_identity/from_environment",
    ];
    let scenarios: Vec<_> = all
        .into_iter()
        .filter(|s| sequence.contains(&s.name.as_str()))
        .collect();
    assert_eq!(scenarios.len(), sequence.len());
    let scratch = tempfile::tempdir().unwrap();
    let trace = scratch.path().join("trace.log");
    let js = js_adapter(&node, &trace, &[]);
    let target = Target::embedded().await.unwrap();
    let settings = RunSettings {
        bin_dir: None,
        timeout_ms: 60_000,
    };
    let results = run_all(&target, &scenarios, &[&js], &settings).await;
    for result in &results {
        assert_eq!(
            result.status,
            Status::Pass,
            "{}: {:?} {:?}",
            result.scenario,
            result.differences,
            result.message
        );
    }
    // The sequence ran in one child, started for the first case; only Service Fabric's case,
    // whose profile trusts another CA bundle (NODE_EXTRA_CA_CERTS, read when Node starts),
    // needed a child of its own.
    let trace = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines.len(), sequence.len(), "{trace}");
    assert!(lines[0].starts_with("new child "), "{trace}");
    let pid = lines[0].split(' ').nth(2).unwrap();
    for line in &lines[1..] {
        let expected = if line.ends_with("/service_fabric_system_assigned") {
            "new child ".to_string()
        } else {
            format!("warm child {pid} ran ")
        };
        assert!(line.starts_with(&expected), "{trace}");
    }
    // Once more: a new run starts with a new child, and a scenario run twice passes twice.
    let again = run_all(&target, &scenarios[..1], &[&js], &settings).await;
    assert_eq!(again[0].status, Status::Pass, "{:?}", again[0].differences);
}

/// An adapter program that answers every request with its process id.
fn pid_echo(dir: &Path) -> ProcessAdapter {
    ProcessAdapter::new(
        "echo",
        vec![
            "sh".into(),
            "-c".into(),
            r#"echo '{"ready": true, "credentials": ["environment"]}'
               while read -r line; do echo "{\"message\": \"$$\"}"; done"#
                .into(),
        ],
        dir.to_path_buf(),
    )
    .with_instances(3)
}

fn request(ca: &str) -> RunRequest {
    RunRequest {
        scenario: "x".into(),
        credential: "environment".into(),
        options: Default::default(),
        env: Default::default(),
        scopes: vec![],
        work_dir: PathBuf::from("/tmp"),
        ca_cert_path: PathBuf::from(ca),
        timeout_ms: 10_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulators_cases_stay_on_one_copy_of_the_adapter_program() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = pid_echo(dir.path());
    adapter.check().await.unwrap();
    let mut pids = Vec::new();
    for ca in ["a", "b", "a", "c", "b", "a", "c"] {
        let result = adapter.run(&request(ca)).await;
        pids.push((ca, result.message.expect("a pid")));
    }
    let pid_of = |ca: &str| -> Vec<&String> {
        pids.iter()
            .filter(|(c, _)| *c == ca)
            .map(|(_, p)| p)
            .collect()
    };
    for ca in ["a", "b", "c"] {
        let seen = pid_of(ca);
        assert!(seen.iter().all(|p| *p == seen[0]), "{ca}: {pids:?}");
    }
    assert_ne!(pid_of("a")[0], pid_of("b")[0], "{pids:?}");
    assert_ne!(pid_of("b")[0], pid_of("c")[0], "{pids:?}");
}

/// A stand-in for @azure/identity whose credential leaves behind what `LEAK` names.
fn leaky_package(dir: &Path) {
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "package.json",
        r#"{"name": "leaky-check", "private": true}"#,
    );
    write(
        "node_modules/@azure/logger/package.json",
        r#"{"name": "@azure/logger", "version": "0.0.0", "main": "index.js"}"#,
    );
    write(
        "node_modules/@azure/logger/index.js",
        "exports.AzureLogger = {}; exports.setLogLevel = () => {};\n",
    );
    write(
        "node_modules/@azure/identity/package.json",
        r#"{"name": "@azure/identity", "version": "0.0.0-leaky", "main": "index.js"}"#,
    );
    write(
        "node_modules/@azure/identity/index.js",
        r#"const net = require("node:net");
class EnvironmentCredential {
  async getToken() {
    const leak = process.env.LEAK;
    if (leak === "timer") setInterval(() => {}, 1000);
    if (leak === "server") await new Promise((done) => net.createServer().listen(0, "127.0.0.1", done));
    if (leak === "global") globalThis.leaked = true;
    if (leak === "listener") process.on("SIGUSR2", () => {});
    // A module evaluated afresh starts from zero: the token says how often this copy ran.
    module.exports.calls = (module.exports.calls || 0) + 1;
    return { token: `calls=${module.exports.calls}`, expiresOnTimestamp: Date.now() + 3600000 };
  }
}
module.exports = { EnvironmentCredential };
"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_child_that_a_case_leaves_changed_retires() {
    let Some(node) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("package");
    leaky_package(&package);
    let trace = dir.path().join("trace.log");
    let js = js_adapter(
        &node,
        &trace,
        &[format!("AZURE_IDENTITY_JS_DIR={}", package.display())],
    );
    js.check().await.unwrap();
    let leaks = [
        "none", "timer", "none", "server", "none", "global", "none", "listener", "none",
    ];
    for leak in leaks {
        let mut request = request("same-ca");
        request.scenario = leak.into();
        request.work_dir = dir.path().to_path_buf();
        request.env.insert("LEAK".into(), leak.into());
        let result = js.run(&request).await;
        // Every case sees a fresh copy of the package.
        assert_eq!(
            result.token.as_deref(),
            Some("calls=1"),
            "{leak}: {result:?}"
        );
    }
    let trace = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    let expected = [
        "new child",  // none
        "warm child", // timer: a process exit would end it; so does the adapter
        "warm child", // none
        "warm child", // server, then retired
        "new child",  // none
        "warm child", // global, then retired
        "new child",  // none
        "warm child", // listener, then retired
        "new child",  // none
    ];
    assert_eq!(lines.len(), expected.len(), "{trace}");
    for (line, start) in lines.iter().zip(expected) {
        assert!(line.starts_with(start), "{trace}");
    }
    assert!(
        lines[3].ends_with("then retired: left running: Server"),
        "{trace}"
    );
    assert!(
        lines[5].ends_with("then retired: added globals: leaked"),
        "{trace}"
    );
    assert!(
        lines[7].ends_with("then retired: added a process 'SIGUSR2' listener"),
        "{trace}"
    );
    assert!(!lines[1].contains("retired"), "{trace}");
}
