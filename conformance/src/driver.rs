//! The driver: for each scenario and adapter, prepare the emulator and the inputs, run the
//! adapter, and compare what happened with what the scenario expects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine;
use entra_emulator::LoggedRequest;
use serde_json::Value;

use crate::adapter::{Adapter, RunRequest, RunResult};
use crate::report::CaseResult;
use crate::scenario::{ExpectedRequest, Outcome, Scenario};
use crate::target::Target;

/// Environment variables whose values are secrets.
const SECRET_VARS: &[&str] = &[
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_PASSWORD",
    "SYSTEM_ACCESSTOKEN",
    "IDENTITY_HEADER",
    "MSI_SECRET",
];
/// Option keys whose values are secrets.
const SECRET_OPTIONS: &[&str] = &["secret", "password", "assertion", "system_access_token"];
/// Variables and options naming files whose contents are secrets.
const SECRET_FILES: &[&str] = &["AZURE_FEDERATED_TOKEN_FILE", "assertion_file"];
/// Shorter strings are not scanned for (too likely to occur by chance).
const MIN_SECRET_LEN: usize = 8;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Where the `az` / `azd` stand-ins are (put first on each scenario's `PATH`).
    pub bin_dir: Option<PathBuf>,
    /// How long one adapter may take on one scenario.
    pub timeout_ms: u64,
}

/// Runs every scenario through every adapter; results in scenario order, adapters within.
pub async fn run_all(
    target: &Target,
    scenarios: &[Scenario],
    adapters: &[&dyn Adapter],
    settings: &RunSettings,
) -> Vec<CaseResult> {
    run_all_on(
        std::slice::from_ref(target),
        scenarios,
        adapters,
        settings,
        &|_| {},
    )
    .await
}

/// The same on several emulators at once: each runs one case at a time (a case resets its
/// emulator), all of them together; `progress` hears of each case as it ends. Results come in
/// scenario order, adapters within, whatever order they finished in.
pub async fn run_all_on(
    targets: &[Target],
    scenarios: &[Scenario],
    adapters: &[&dyn Adapter],
    settings: &RunSettings,
    progress: &(dyn Fn(&CaseResult) + Sync),
) -> Vec<CaseResult> {
    let mut availability = Vec::new();
    for adapter in adapters {
        availability.push(adapter.check().await);
    }
    let mut jobs = Vec::new();
    for scenario in scenarios {
        for (adapter, available) in adapters.iter().zip(&availability) {
            let skip = match available {
                Err(reason) => Some(format!("adapter unavailable: {reason}")),
                Ok(()) if !adapter.supports(&scenario.credential) => Some(format!(
                    "{} does not implement {}",
                    adapter.name(),
                    scenario.credential
                )),
                Ok(()) => scenario.skip.get(adapter.name()).cloned(),
            };
            jobs.push((scenario, *adapter, skip));
        }
    }
    let slots: Vec<std::sync::Mutex<Option<CaseResult>>> =
        jobs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = targets.iter().map(|target| async {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some((scenario, adapter, skip)) = jobs.get(i) else {
                break;
            };
            let result = match skip {
                Some(reason) => CaseResult::skipped(scenario, adapter.name(), reason.clone()),
                None => run_one(target, scenario, *adapter, settings).await,
            };
            progress(&result);
            *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    });
    futures::future::join_all(workers).await;
    slots
        .into_iter()
        .filter_map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// Runs one scenario through one adapter.
pub async fn run_one(
    target: &Target,
    scenario: &Scenario,
    adapter: &dyn Adapter,
    settings: &RunSettings,
) -> CaseResult {
    let started = Instant::now();
    let work = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => return CaseResult::failed(scenario, adapter.name(), 0, vec![e.to_string()]),
    };
    let prepared = match prepare(target, scenario, work.path(), settings).await {
        Ok(p) => p,
        Err(e) => {
            return CaseResult::failed(
                scenario,
                adapter.name(),
                started.elapsed().as_millis(),
                vec![format!("setting up the scenario failed: {e}")],
            );
        }
    };
    let result = adapter.run(&prepared.request).await;
    let mut resource_differences = Vec::new();
    if let (Some(step), Some(token)) = (&scenario.resource, &result.token) {
        // A claims challenge is answered by running the adapter again with its claims.
        let rerun = |claims: String| {
            let mut request = prepared.request.clone();
            request
                .options
                .insert("claims".into(), Value::String(claims));
            request
                .options
                .insert("enable_cae".into(), Value::Bool(true));
            async move { adapter.run(&request).await }
        };
        resource_differences = crate::resource::exercise(target, step, token, rerun).await;
    }
    let requests = target.requests().await.unwrap_or_default();
    let mut differences = compare(scenario, adapter.name(), &result, &requests);
    differences.extend(resource_differences);
    differences.extend(scan_secrets(&prepared.secrets, &result));
    let millis = started.elapsed().as_millis();
    let mut case = if differences.is_empty() {
        CaseResult::passed(scenario, adapter.name(), millis)
    } else {
        CaseResult::failed(scenario, adapter.name(), millis, differences)
    };
    case.message = result.message.clone();
    case
}

struct Prepared {
    request: RunRequest,
    secrets: Vec<(String, String)>,
}

/// Resets the emulator, applies the scenario's setup and faults, writes its files and builds
/// the adapter request with every placeholder resolved.
async fn prepare(
    target: &Target,
    scenario: &Scenario,
    work: &Path,
    settings: &RunSettings,
) -> Result<Prepared, String> {
    target.reset().await?;
    let profile = match &scenario.profile {
        Some(name) => target
            .ready
            .profile(name)
            .cloned()
            .ok_or_else(|| format!("the emulator has no profile '{name}'"))?,
        None => base_env(target),
    };
    let vars = placeholders(target, work)?;
    let resolve = |text: &str| resolve(text, &vars, &profile, work);
    set_up(target, scenario, work, &resolve).await?;
    let env = scenario_env(scenario, profile.clone(), settings, &resolve);
    let options: serde_json::Map<String, Value> = scenario
        .options
        .iter()
        .map(|(k, v)| (k.clone(), resolve_json(v, &resolve)))
        .collect();
    let secrets = input_secrets(&env, &options);
    let request = RunRequest {
        scenario: scenario.name.clone(),
        credential: scenario.credential.clone(),
        options,
        env,
        scopes: scenario.scopes.clone(),
        work_dir: work.to_path_buf(),
        ca_cert_path: trusted_ca(target, scenario),
        timeout_ms: settings.timeout_ms,
    };
    Ok(Prepared { request, secrets })
}

/// The CA file the adapter trusts: the emulator's, or for transparent mode (the `transparent`
/// profile) the bundle with the transparent-mode CA that signs Azure's host names.
fn trusted_ca(target: &Target, scenario: &Scenario) -> PathBuf {
    match (&scenario.profile, &target.ready.transparent_ca_bundle_path) {
        (Some(profile), Some(bundle)) if profile == "transparent" => bundle.clone(),
        _ => target.ready.ca_cert_path.clone(),
    }
}

/// The scenario's control-plane calls, faults and files.
async fn set_up(
    target: &Target,
    scenario: &Scenario,
    work: &Path,
    resolve: &dyn Fn(&str) -> String,
) -> Result<(), String> {
    for call in &scenario.setup {
        let body = call.body.as_ref().map(|b| resolve_json(b, resolve));
        target
            .control(&call.method, &resolve(&call.path), body.as_ref())
            .await?;
    }
    for fault in &scenario.faults {
        target.add_fault(fault).await?;
    }
    for (name, contents) in &scenario.files {
        std::fs::write(work.join(name), resolve(contents)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The `{{name}}` placeholders a scenario may use, and their values for this run.
fn placeholders(target: &Target, work: &Path) -> Result<BTreeMap<&'static str, String>, String> {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        format!("http://127.0.0.1:{port}")
    };
    let ready = &target.ready;
    Ok(BTreeMap::from([
        ("https_url", ready.https_url.clone()),
        ("http_url", ready.http_url.clone()),
        ("state_dir", ready.state_dir.display().to_string()),
        ("work_dir", work.display().to_string()),
        ("arc_key_dir", target.arc_key_dir.display().to_string()),
        ("ca_cert", ready.ca_cert_path.display().to_string()),
        ("arm_url", ready.arm_url.clone().unwrap_or_default()),
        ("closed_port", closed_port),
    ]))
}

/// The adapter's environment: the profile, less `unset`, plus `env`, with the fake CLIs first
/// on `PATH` and this process's `HOME` and `TMPDIR`.
fn scenario_env(
    scenario: &Scenario,
    mut env: BTreeMap<String, String>,
    settings: &RunSettings,
    resolve: &dyn Fn(&str) -> String,
) -> BTreeMap<String, String> {
    for name in &scenario.unset {
        env.remove(name);
    }
    for (name, value) in &scenario.env {
        env.insert(name.clone(), resolve(value));
    }
    if !scenario.env.contains_key("PATH") {
        // The `az` / `azd` stand-ins first, then the profile's or this process's PATH.
        let rest = env
            .get("PATH")
            .cloned()
            .unwrap_or_else(|| std::env::var("PATH").unwrap_or_default());
        let path = match &settings.bin_dir {
            Some(bin) => format!("{}:{rest}", bin.display()),
            None => rest,
        };
        env.insert("PATH".into(), path);
    }
    for (key, value) in ["HOME", "TMPDIR"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (*k, v)))
    {
        env.entry(key.into()).or_insert(value);
    }
    env
}

/// The secrets among a case's inputs, named, for the leak scan.
fn input_secrets(
    env: &BTreeMap<String, String>,
    options: &serde_json::Map<String, Value>,
) -> Vec<(String, String)> {
    let mut secrets = Vec::new();
    for var in SECRET_VARS {
        if let Some(v) = env.get(*var) {
            secrets.push(((*var).to_string(), v.clone()));
        }
    }
    for key in SECRET_OPTIONS {
        if let Some(Value::String(v)) = options.get(*key) {
            secrets.push((format!("option {key}"), v.clone()));
        }
    }
    for key in SECRET_FILES {
        let file = env.get(*key).cloned().or_else(|| {
            options
                .get(*key)
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        if let Some(contents) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
            secrets.push((format!("contents of {key}"), contents.trim().to_string()));
        }
    }
    secrets
}

/// Trust for the emulator's CA and no proxy: what every scenario without a profile starts from.
fn base_env(target: &Target) -> BTreeMap<String, String> {
    let ca = target.ready.ca_cert_path.display().to_string();
    let mut env = BTreeMap::new();
    for name in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"] {
        env.insert(name.to_string(), ca.clone());
    }
    env.insert("NO_PROXY".into(), "127.0.0.1,localhost,::1".into());
    env
}

/// Replaces `{{name}}`, `{{env:VAR}}` (the profile's variable) and `{{file:NAME}}` (a file in
/// the work folder).
fn resolve(
    text: &str,
    vars: &BTreeMap<&str, String>,
    profile: &BTreeMap<String, String>,
    work: &Path,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = rest[start + 2..start + end].trim();
        let value = if let Some(var) = key.strip_prefix("env:") {
            profile.get(var).cloned().unwrap_or_default()
        } else if let Some(file) = key.strip_prefix("file:") {
            work.join(file).display().to_string()
        } else {
            vars.get(key)
                .cloned()
                .unwrap_or_else(|| format!("{{{{{key}}}}}"))
        };
        out.push_str(&value);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn resolve_json(value: &Value, resolve: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(resolve(s)),
        Value::Array(a) => Value::Array(a.iter().map(|v| resolve_json(v, resolve)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), resolve_json(v, resolve)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The JWT payload of a token, if it is one.
fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What differs between the scenario's expectations and what happened.
pub fn compare(
    scenario: &Scenario,
    adapter: &str,
    result: &RunResult,
    requests: &[LoggedRequest],
) -> Vec<String> {
    let mut differences = Vec::new();
    let message = result.message.as_deref().unwrap_or_default();
    match (scenario.expect.outcome, &result.token) {
        (Outcome::Token, None) => differences.push(format!(
            "expected a token, got {}: {}",
            result.error_kind.map_or_else(
                || "an adapter failure".to_string(),
                |k| format!("a {k} error")
            ),
            first_line(message)
        )),
        (Outcome::Error, Some(_)) => differences.push("expected an error, got a token".into()),
        (Outcome::Token, Some(token)) => compare_claims(scenario, token, &mut differences),
        (Outcome::Error, None) => compare_error(scenario, adapter, result, &mut differences),
    }
    for want in &scenario.expect.requests {
        differences.extend(compare_requests(want, requests));
    }
    differences
}

/// The token's claims against `expect.claims`.
fn compare_claims(scenario: &Scenario, token: &str, differences: &mut Vec<String>) {
    let expected = &scenario.expect.claims;
    let Some(claims) = claims(token) else {
        if !expected.is_empty() {
            differences.push("the token is not a JWT, so its claims cannot be checked".into());
        }
        return;
    };
    for (name, want) in expected {
        let got = claims.get(name).cloned().unwrap_or(Value::Null);
        if &got != want {
            differences.push(format!("claim {name}: expected {want}, got {got}"));
        }
    }
}

/// The error's kind and message against the scenario's (per adapter).
fn compare_error(
    scenario: &Scenario,
    adapter: &str,
    result: &RunResult,
    differences: &mut Vec<String>,
) {
    let message = result.message.as_deref().unwrap_or_default();
    if let Some(want) = scenario.error_kind_for(adapter) {
        match result.error_kind {
            Some(got) if got == want => {}
            Some(got) => differences.push(format!(
                "error kind: expected {want}, got {got} ({})",
                first_line(message)
            )),
            None => differences.push(format!(
                "error kind: expected {want}, got an adapter failure: {}",
                first_line(message)
            )),
        }
    }
    for fragment in scenario.messages_for(adapter) {
        if !message.contains(fragment.as_str()) {
            differences.push(format!(
                "message lacks '{fragment}': {}",
                first_line(message)
            ));
        }
    }
}

/// One expected kind of request against the emulator's log.
fn compare_requests(want: &ExpectedRequest, requests: &[LoggedRequest]) -> Option<String> {
    let n = requests.iter().filter(|r| want.matches(r)).count();
    let seen: Vec<String> = requests
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.status))
        .collect();
    let (seen, describe) = (seen.join(", "), want.describe());
    match (want.count, want.min) {
        (Some(count), _) if n != count => Some(format!(
            "expected {count} {describe}, saw {n} (log: {seen})"
        )),
        (None, Some(min)) if n < min => Some(format!(
            "expected at least {min} {describe}, saw {n} (log: {seen})"
        )),
        (None, None) if n == 0 => Some(format!("expected {describe}, saw none (log: {seen})")),
        _ => None,
    }
}

impl ExpectedRequest {
    fn matches(&self, r: &LoggedRequest) -> bool {
        r.endpoint == Some(self.endpoint)
            && self.faulted.is_none_or(|f| r.fault.is_some() == f)
            && self
                .form
                .iter()
                .all(|(k, v)| r.form_field(k) == Some(v.as_str()))
            && self
                .query
                .iter()
                .all(|(k, v)| r.query_param(k) == Some(v.as_str()))
    }

    fn describe(&self) -> String {
        let mut d = format!("{} request(s)", self.endpoint.name());
        for (k, v) in self.form.iter().chain(&self.query) {
            d.push_str(&format!(" {k}={v}"));
        }
        if let Some(f) = self.faulted {
            d.push_str(if f { " hit by a fault" } else { " not faulted" });
        }
        d
    }
}

/// Fails when a secret from the scenario's inputs, or the issued token, appears in the logs or
/// the error message.
fn scan_secrets(secrets: &[(String, String)], result: &RunResult) -> Vec<String> {
    let haystack = format!(
        "{}\n{}",
        result.logs,
        result.message.as_deref().unwrap_or_default()
    );
    let mut found = Vec::new();
    let token = result
        .token
        .as_ref()
        .map(|t| ("the issued access token".to_string(), t.clone()));
    for (what, secret) in secrets.iter().cloned().chain(token) {
        if secret.len() >= MIN_SECRET_LEN && haystack.contains(&secret) {
            let line = haystack
                .lines()
                .find(|l| l.contains(&secret))
                .unwrap_or_default()
                .replace(&secret, "<SECRET>");
            // Up to 160 characters either side of the first occurrence.
            let at = line.find("<SECRET>").unwrap_or(0);
            let chars: Vec<char> = line.chars().collect();
            let at = line[..at].chars().count();
            let from = at.saturating_sub(160);
            let to = (at + 8 + 160).min(chars.len());
            let excerpt: String = chars[from..to].iter().collect();
            let excerpt = format!(
                "{}{excerpt}{}",
                if from > 0 { "…" } else { "" },
                if to < chars.len() { "…" } else { "" }
            );
            found.push(format!(
                "secret leak: {what} appears in the logs or error: {excerpt}"
            ));
        }
    }
    found
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
