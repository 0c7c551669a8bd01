//! The Rust adapter: this workspace's `azure_identity`, in process.
//!
//! Each credential reads the scenario's environment through an injected [`Os`] (the process
//! environment is never touched) and talks to the emulator through a transport that trusts its
//! CA. Child processes (the CLIs) get exactly the scenario's environment. The library's
//! `tracing` output at TRACE level, the credential's `Debug` and the error's `Display` and
//! `Debug` are the logs the driver scans for secrets.
//!
//! Options (all optional): `tenant_id`, `client_id`, `secret`, `certificate` (a path; PEM or
//! PKCS#12), `password`, `send_certificate_chain`, `assertion` / `assertion_file`,
//! `token_file_path`, `service_connection_id`, `system_access_token`, `user_assigned_client_id`
//! / `user_assigned_object_id` / `user_assigned_resource_id`, `managed_identity_client_id`,
//! `require_azure_token_credentials`, `cli_tenant_id`, `cli_timeout_ms`, `try_timeout_ms`,
//! `max_retries`, `sources` (for `chained`: a list of credential kinds). Missing values come from
//! the environment as the credentials themselves read it. The user credentials' options are in
//! `rust_user_flows.rs`.

use std::ffi::OsStr;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::ClientMethodOptions;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::os::{MapEnv, Os};
use azure_identity::*;
use serde_json::Value;
use tracing::instrument::WithSubscriber;

use crate::adapter::{Adapter, RunRequest, RunResult};

#[path = "rust_user_flows.rs"]
mod user;
use crate::scenario::ErrorKind;

/// The in-process Rust adapter.
#[derive(Debug, Default)]
pub struct RustAdapter;

#[async_trait]
impl Adapter for RustAdapter {
    fn name(&self) -> &str {
        "rust"
    }

    async fn check(&self) -> Result<(), String> {
        Ok(())
    }

    fn supports(&self, credential: &str) -> bool {
        BUILDERS.iter().any(|(name, _)| *name == credential)
    }

    async fn run(&self, request: &RunRequest) -> RunResult {
        let logs = LogBuffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let timeout = Duration::from_millis(request.timeout_ms);
        let outcome = tokio::time::timeout(timeout, run(request).with_subscriber(subscriber)).await;
        let mut result = match outcome {
            Ok(result) => result,
            Err(_) => {
                RunResult::adapter_failure(format!("no result within {} ms", request.timeout_ms))
            }
        };
        result.logs = format!("{}{}", logs.text(), result.logs);
        result
    }
}

/// Shared, growable log text.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

async fn run(request: &RunRequest) -> RunResult {
    let mut context = match Context::new(request) {
        Ok(c) => c,
        Err(message) => return failure(ErrorKind::Configuration, message, String::new()),
    };
    if request.credential == "authorization_code" {
        match user::obtain_code(&context).await {
            Ok(code) => context.code = Some(code),
            Err(message) => return failure(ErrorKind::Authentication, message, String::new()),
        }
    }
    let credential = match build(&request.credential, &context) {
        Ok(c) => c,
        Err(e) => {
            let kind = if is_unavailable(&e) {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Configuration
            };
            return failure(kind, e.to_string(), format!("{e:?}"));
        }
    };
    let debug = format!("credential: {credential:?}\n");
    let scopes: Vec<&str> = request.scopes.iter().map(String::as_str).collect();
    let mut result = credential.get_token(&scopes, context.token_options()).await;
    if context.flag("redeem_twice") && result.is_ok() {
        // The same code in a second credential.
        result = match build(&request.credential, &context) {
            Ok(again) => again.get_token(&scopes, None).await,
            Err(e) => Err(e),
        };
    }
    if result.is_ok()
        && let Some(second) = user::after_revocation(&context, credential.as_ref()).await
    {
        result = second;
    }
    match result {
        Ok(token) => RunResult {
            token: Some(token.token.secret().to_string()),
            expires_on: Some(token.expires_on.unix_timestamp()),
            error_kind: None,
            message: None,
            logs: debug,
        },
        Err(e) => {
            let kind = if is_unavailable(&e) {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Authentication
            };
            failure(kind, e.to_string(), format!("{debug}{e:?}"))
        }
    }
}

fn failure(kind: ErrorKind, message: String, logs: String) -> RunResult {
    RunResult {
        token: None,
        expires_on: None,
        error_kind: Some(kind),
        message: Some(message),
        logs,
    }
}

/// Everything a credential is built from.
struct Context<'a> {
    request: &'a RunRequest,
    os: Os,
    client_options: ClientOptions,
    executor: Arc<dyn Executor>,
    /// For `authorization_code`: the code the case's person obtained.
    code: Option<String>,
}

/// HTTP options for a case: trust the case's CA file only, no redirects, fast retries
/// (Retry-After still honoured) and the case's per-try timeout. No proxy, unless the case's
/// environment names one (`HTTPS_PROXY`: transparent mode), as other SDKs read it.
fn client_options(request: &RunRequest) -> Result<ClientOptions, String> {
    let ca = std::fs::read(&request.ca_cert_path)
        .map_err(|e| format!("reading {}: {e}", request.ca_cert_path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&ca).map_err(|e| e.to_string())?;
    let builder = reqwest::Client::builder().tls_certs_only(certs);
    let builder = match request.env.get("HTTPS_PROXY") {
        Some(proxy) => builder.proxy(reqwest::Proxy::all(proxy).map_err(|e| e.to_string())?),
        None => builder.no_proxy(),
    };
    let http = builder
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let mut client_options = ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        ..Default::default()
    };
    let max_retries = number(&request.options, "max_retries").unwrap_or(3) as u32;
    client_options.retry = RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: time::Duration::milliseconds(10),
        max_delay: time::Duration::milliseconds(200),
        max_retries,
        max_total_elapsed: time::Duration::seconds(30),
    });
    let try_timeout = number(&request.options, "try_timeout_ms").unwrap_or(5_000);
    client_options
        .per_try_policies
        .push(Arc::new(ExchangeLimits {
            try_timeout: time::Duration::milliseconds(try_timeout),
            ..ExchangeLimits::default()
        }));
    Ok(client_options)
}

impl<'a> Context<'a> {
    fn new(request: &'a RunRequest) -> Result<Self, String> {
        let client_options = client_options(request)?;
        let env: MapEnv = request.env.clone().into_iter().collect();
        Ok(Self {
            request,
            os: Os {
                env: Arc::new(env),
                ..Os::default()
            },
            client_options,
            executor: Arc::new(ScenarioExecutor(request.env.clone())),
            code: None,
        })
    }

    /// An option's string value, else the environment variable `var`.
    fn get(&self, option: &str, var: &str) -> Option<String> {
        self.option(option)
            .or_else(|| self.request.env.get(var).cloned())
    }

    fn option(&self, option: &str) -> Option<String> {
        match self.request.options.get(option) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        }
    }

    fn flag(&self, option: &str) -> bool {
        self.request.options.get(option) == Some(&Value::Bool(true))
    }

    /// The request options of `enable_cae` and `claims` (a claims challenge), if either is set.
    fn token_options(&self) -> Option<azure_core::credentials::TokenRequestOptions<'static>> {
        let extras = azure_identity::TokenRequestExtras {
            claims: self.option("claims"),
            enable_cae: self.flag("enable_cae"),
            ..Default::default()
        };
        if extras == azure_identity::TokenRequestExtras::default() {
            return None;
        }
        let mut options = azure_core::credentials::TokenRequestOptions::default();
        options.method_options.context.insert(extras);
        Some(options)
    }

    /// An option or variable the credential needs; empty when absent, so the credential
    /// itself reports what is missing.
    fn required(&self, option: &str, var: &str) -> String {
        self.get(option, var).unwrap_or_default()
    }

    fn imds_retry(&self) -> ImdsRetryOptions {
        ImdsRetryOptions {
            initial_delay: time::Duration::milliseconds(10),
            max_delay: time::Duration::milliseconds(200),
            ..ImdsRetryOptions::default()
        }
    }
}

fn number(options: &serde_json::Map<String, Value>, key: &str) -> Option<i64> {
    match options.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Runs a program with exactly the scenario's environment.
struct ScenarioExecutor(std::collections::BTreeMap<String, String>);

impl std::fmt::Debug for ScenarioExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: the values hold the scenario's secrets.
        f.debug_tuple("ScenarioExecutor")
            .field(&self.0.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[async_trait]
impl Executor for ScenarioExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> std::io::Result<std::process::Output> {
        tokio::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(&self.0)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
    }
}

/// An assertion given as a string (for `client_assertion`).
#[derive(Debug)]
struct FixedAssertion(Secret);

#[async_trait]
impl ClientAssertion for FixedAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        Ok(self.0.secret().to_string())
    }
}

type Built = azure_core::Result<Arc<dyn TokenCredential>>;

/// Builds one kind of credential for a case.
type Builder = fn(&Context<'_>) -> Built;

/// Every credential kind the adapter builds, by its scenario name.
const BUILDERS: &[(&str, Builder)] = &[
    ("client_secret", client_secret),
    ("client_certificate", client_certificate),
    ("client_assertion", client_assertion),
    ("workload_identity", workload_identity),
    ("azure_pipelines", azure_pipelines),
    ("managed_identity", managed_identity),
    ("environment", environment),
    ("default", default),
    ("azure_cli", azure_cli),
    ("azure_developer_cli", azure_developer_cli),
    ("developer_tools", developer_tools),
    ("chained", chained),
    ("device_code", user::device_code),
    ("interactive_browser", user::interactive_browser),
    ("authorization_code", user::authorization_code),
    ("on_behalf_of", user::on_behalf_of),
];

fn config_error(message: String) -> azure_core::Error {
    azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, message)
}

fn build(kind: &str, c: &Context<'_>) -> Built {
    match BUILDERS.iter().find(|(name, _)| *name == kind) {
        Some((_, build)) => build(c),
        None => Err(config_error(format!("unknown credential '{kind}'"))),
    }
}

fn client_secret(c: &Context<'_>) -> Built {
    Ok(ClientSecretCredential::new(
        &c.required("tenant_id", "AZURE_TENANT_ID"),
        c.required("client_id", "AZURE_CLIENT_ID"),
        c.required("secret", "AZURE_CLIENT_SECRET").into(),
        Some(ClientSecretCredentialOptions {
            client_options: c.client_options.clone(),
            os: c.os.clone(),
            ..Default::default()
        }),
    )?)
}

fn client_certificate(c: &Context<'_>) -> Built {
    let path = c.required("certificate", "AZURE_CLIENT_CERTIFICATE_PATH");
    let bytes = std::fs::read(&path)
        .map_err(|e| config_error(format!("cannot read certificate {path}: {e}")))?;
    let password = c.get("password", "AZURE_CLIENT_CERTIFICATE_PASSWORD");
    Ok(ClientCertificateCredential::new(
        c.required("tenant_id", "AZURE_TENANT_ID"),
        c.required("client_id", "AZURE_CLIENT_ID"),
        bytes.into(),
        Some(ClientCertificateCredentialOptions {
            client_options: c.client_options.clone(),
            password: password.map(Secret::from),
            send_certificate_chain: c.flag("send_certificate_chain"),
            os: c.os.clone(),
            ..Default::default()
        }),
    )?)
}

fn client_assertion(c: &Context<'_>) -> Built {
    let assertion = match (c.option("assertion"), c.option("assertion_file")) {
        (Some(a), _) => a,
        (None, Some(file)) => std::fs::read_to_string(&file)
            .map_err(|e| config_error(format!("cannot read assertion {file}: {e}")))?,
        (None, None) => String::new(),
    };
    Ok(ClientAssertionCredential::new(
        c.required("tenant_id", "AZURE_TENANT_ID"),
        c.required("client_id", "AZURE_CLIENT_ID"),
        FixedAssertion(Secret::from(assertion.trim().to_string())),
        Some(assertion_options(c)),
    )?)
}

fn workload_identity(c: &Context<'_>) -> Built {
    Ok(WorkloadIdentityCredential::new(Some(
        WorkloadIdentityCredentialOptions {
            credential_options: assertion_options(c),
            client_id: c.option("client_id"),
            tenant_id: c.option("tenant_id"),
            token_file_path: c.option("token_file_path").map(Into::into),
        },
    ))?)
}

fn azure_pipelines(c: &Context<'_>) -> Built {
    Ok(AzurePipelinesCredential::new(
        c.required("tenant_id", "AZURESUBSCRIPTION_TENANT_ID"),
        c.required("client_id", "AZURESUBSCRIPTION_CLIENT_ID"),
        &c.required(
            "service_connection_id",
            "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
        ),
        c.required("system_access_token", "SYSTEM_ACCESSTOKEN"),
        Some(AzurePipelinesCredentialOptions {
            credential_options: assertion_options(c),
        }),
    )?)
}

fn managed_identity(c: &Context<'_>) -> Built {
    let user_assigned_id = c
        .option("user_assigned_client_id")
        .map(UserAssignedId::ClientId)
        .or_else(|| {
            c.option("user_assigned_object_id")
                .map(UserAssignedId::ObjectId)
        })
        .or_else(|| {
            c.option("user_assigned_resource_id")
                .map(UserAssignedId::ResourceId)
        });
    let mut client_options = c.client_options.clone();
    if c.request.env.contains_key("IDENTITY_SERVER_THUMBPRINT") {
        // Service Fabric: the credential pins the server's thumbprint itself.
        client_options.transport = None;
    }
    Ok(ManagedIdentityCredential::new(Some(
        ManagedIdentityCredentialOptions {
            user_assigned_id,
            client_options,
            imds_retry: c.imds_retry(),
            arc_key_directory: c.option("arc_key_directory").map(Into::into),
            os: c.os.clone(),
            ..Default::default()
        },
    ))?)
}

fn environment(c: &Context<'_>) -> Built {
    Ok(EnvironmentCredential::new(Some(
        EnvironmentCredentialOptions {
            client_options: c.client_options.clone(),
            os: c.os.clone(),
        },
    ))?)
}

fn default(c: &Context<'_>) -> Built {
    Ok(DefaultAzureCredential::new(Some(
        DefaultAzureCredentialOptions {
            client_options: c.client_options.clone(),
            managed_identity_client_id: c.option("managed_identity_client_id"),
            require_azure_token_credentials: c.flag("require_azure_token_credentials"),
            executor: Some(c.executor.clone()),
            os: c.os.clone(),
            ..Default::default()
        },
    ))?)
}

fn cli_timeout(c: &Context<'_>) -> Option<time::Duration> {
    number(&c.request.options, "cli_timeout_ms").map(time::Duration::milliseconds)
}

fn azure_cli(c: &Context<'_>) -> Built {
    Ok(AzureCliCredential::new(Some(AzureCliCredentialOptions {
        tenant_id: c.option("cli_tenant_id"),
        subscription: c.option("subscription"),
        executor: Some(c.executor.clone()),
        timeout: cli_timeout(c),
        os: c.os.clone(),
    }))?)
}

fn azure_developer_cli(c: &Context<'_>) -> Built {
    Ok(AzureDeveloperCliCredential::new(Some(
        AzureDeveloperCliCredentialOptions {
            tenant_id: c.option("cli_tenant_id"),
            executor: Some(c.executor.clone()),
            timeout: cli_timeout(c),
            os: c.os.clone(),
        },
    ))?)
}

fn developer_tools(c: &Context<'_>) -> Built {
    Ok(DeveloperToolsCredential::new(Some(
        DeveloperToolsCredentialOptions {
            executor: Some(c.executor.clone()),
            os: c.os.clone(),
        },
    ))?)
}

fn chained(c: &Context<'_>) -> Built {
    let sources = match c.request.options.get("sources") {
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| *k != "chained")
            .map(|k| build(k, c))
            .collect::<azure_core::Result<Vec<_>>>()?,
        _ => return Err(config_error("chained needs options.sources".into())),
    };
    Ok(ChainedTokenCredential::new(sources, None)?)
}

fn assertion_options(c: &Context<'_>) -> ClientAssertionCredentialOptions {
    ClientAssertionCredentialOptions {
        client_options: c.client_options.clone(),
        os: c.os.clone(),
        ..Default::default()
    }
}
