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
use crate::scenario::{Outcome, Scenario};
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
    let mut availability = Vec::new();
    for adapter in adapters {
        availability.push(adapter.check().await);
    }
    let mut results = Vec::new();
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
            let result = match skip {
                Some(reason) => CaseResult::skipped(scenario, adapter.name(), reason),
                None => run_one(target, scenario, *adapter, settings).await,
            };
            results.push(result);
        }
    }
    results
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
    let requests = target.requests().await.unwrap_or_default();
    let mut differences = compare(scenario, adapter.name(), &result, &requests);
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
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        format!("http://127.0.0.1:{port}")
    };
    let mut vars: BTreeMap<&str, String> = BTreeMap::new();
    vars.insert("https_url", target.ready.https_url.clone());
    vars.insert("http_url", target.ready.http_url.clone());
    vars.insert("state_dir", target.ready.state_dir.display().to_string());
    vars.insert("work_dir", work.display().to_string());
    vars.insert("arc_key_dir", target.arc_key_dir.display().to_string());
    vars.insert("ca_cert", target.ready.ca_cert_path.display().to_string());
    vars.insert("closed_port", closed_port);
    let resolve = |text: &str| resolve(text, &vars, &profile, work);

    for call in &scenario.setup {
        let body = call.body.as_ref().map(|b| resolve_json(b, &resolve));
        target
            .control(&call.method, &resolve(&call.path), body.as_ref())
            .await?;
    }
    for fault in &scenario.faults {
        target.add_fault(fault).await?;
    }
    let mut secrets = Vec::new();
    for (name, contents) in &scenario.files {
        let contents = resolve(contents);
        std::fs::write(work.join(name), &contents).map_err(|e| e.to_string())?;
    }
    let mut env = profile.clone();
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
    let options: serde_json::Map<String, Value> = scenario
        .options
        .iter()
        .map(|(k, v)| (k.clone(), resolve_json(v, &resolve)))
        .collect();

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
    let request = RunRequest {
        scenario: scenario.name.clone(),
        credential: scenario.credential.clone(),
        options,
        env,
        scopes: scenario.scopes.clone(),
        work_dir: work.to_path_buf(),
        ca_cert_path: target.ready.ca_cert_path.clone(),
        timeout_ms: settings.timeout_ms,
    };
    Ok(Prepared { request, secrets })
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
    let expect = &scenario.expect;
    let message = result.message.as_deref().unwrap_or_default();
    match (expect.outcome, &result.token) {
        (Outcome::Token, None) => differences.push(format!(
            "expected a token, got {}: {}",
            result.error_kind.map_or_else(
                || "an adapter failure".to_string(),
                |k| format!("a {k} error")
            ),
            first_line(message)
        )),
        (Outcome::Error, Some(_)) => differences.push("expected an error, got a token".into()),
        (Outcome::Token, Some(token)) => match claims(token) {
            Some(claims) => {
                for (name, want) in &expect.claims {
                    let got = claims.get(name).cloned().unwrap_or(Value::Null);
                    if &got != want {
                        differences.push(format!("claim {name}: expected {want}, got {got}"));
                    }
                }
            }
            None if !expect.claims.is_empty() => {
                differences.push("the token is not a JWT, so its claims cannot be checked".into());
            }
            None => {}
        },
        (Outcome::Error, None) => {
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
    }
    for want in &expect.requests {
        let matching: Vec<&LoggedRequest> = requests
            .iter()
            .filter(|r| r.endpoint == Some(want.endpoint))
            .filter(|r| want.faulted.is_none_or(|f| r.fault.is_some() == f))
            .filter(|r| {
                want.form
                    .iter()
                    .all(|(k, v)| r.form_field(k) == Some(v.as_str()))
            })
            .filter(|r| {
                want.query
                    .iter()
                    .all(|(k, v)| r.query_param(k) == Some(v.as_str()))
            })
            .collect();
        let n = matching.len();
        let describe = || {
            let mut d = format!("{} request(s)", want.endpoint.name());
            for (k, v) in want.form.iter().chain(&want.query) {
                d.push_str(&format!(" {k}={v}"));
            }
            if let Some(f) = want.faulted {
                d.push_str(if f { " hit by a fault" } else { " not faulted" });
            }
            d
        };
        let seen: Vec<String> = requests
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect();
        match (want.count, want.min) {
            (Some(count), _) if n != count => differences.push(format!(
                "expected {count} {}, saw {n} (log: {})",
                describe(),
                seen.join(", ")
            )),
            (None, Some(min)) if n < min => differences.push(format!(
                "expected at least {min} {}, saw {n} (log: {})",
                describe(),
                seen.join(", ")
            )),
            (None, None) if n == 0 => differences.push(format!(
                "expected {}, saw none (log: {})",
                describe(),
                seen.join(", ")
            )),
            _ => {}
        }
    }
    differences
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
