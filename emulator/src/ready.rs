//! The ready file: the contract that lets scripts in any language find the emulator and point
//! a client at it, one environment-variable profile per flow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use entra_emulator_contract::ReadyInfo;

use crate::config::Seed;
use crate::directory::Directory;

/// Fixed plan and job ids in the Pipelines OIDC request URI (any value works).
const PLAN_ID: &str = "0f0f0f0f-0000-4000-8000-000000000001";
const JOB_ID: &str = "0f0f0f0f-0000-4000-8000-000000000002";

/// Inputs the profiles are computed from.
pub(crate) struct ProfileInputs<'a> {
    pub(crate) https_url: &'a str,
    pub(crate) http_url: &'a str,
    pub(crate) service_fabric_url: &'a str,
    pub(crate) service_fabric_thumbprint: &'a str,
    /// `(AZURE_CONFIG_DIR, AZD_CONFIG_DIR)`, signed in.
    pub(crate) cli_config_dirs: (PathBuf, PathBuf),
    pub(crate) ca_cert_path: &'a Path,
    pub(crate) directory: &'a Directory,
    /// The workload identity token file, if one was written.
    pub(crate) federated_token_file: Option<&'a Path>,
    /// The emulator's time (expired secrets are not offered).
    pub(crate) now: time::OffsetDateTime,
    /// The first seeded Key Vault's URL (`AZURE_KEYVAULT_URL`).
    pub(crate) key_vault_url: Option<&'a str>,
    /// Transparent mode: the proxy's URL and the CA bundle its clients trust.
    pub(crate) transparent: Option<(&'a str, &'a Path)>,
}

/// The variables through which Python, curl, Node and OpenSSL-based clients trust a CA file.
const CA_VARIABLES: [&str; 4] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

/// `vars` with every CA variable naming `ca`.
fn trusting(mut vars: BTreeMap<String, String>, ca: &Path) -> BTreeMap<String, String> {
    for name in CA_VARIABLES {
        vars.insert(name.to_string(), ca.display().to_string());
    }
    vars
}

fn base(inputs: &ProfileInputs<'_>) -> BTreeMap<String, String> {
    let mut vars = trusting(BTreeMap::new(), inputs.ca_cert_path);
    if let Some(url) = inputs.key_vault_url {
        vars.insert("AZURE_KEYVAULT_URL".into(), url.to_string());
    }
    vars.insert("NO_PROXY".into(), "127.0.0.1,localhost,::1".into());
    vars.insert("no_proxy".into(), "127.0.0.1,localhost,::1".into());
    vars
}

fn with(mut vars: BTreeMap<String, String>, extra: &[(&str, String)]) -> BTreeMap<String, String> {
    for (k, v) in extra {
        vars.insert((*k).to_string(), v.clone());
    }
    vars
}

/// One profile's environment.
type Env = BTreeMap<String, String>;

/// A profile: its name and how to compute it (`None` when the seed cannot support it).
type Builder = fn(&ProfileInputs<'_>) -> Option<Env>;

/// Every profile, by name, in one table.
const PROFILES: &[(&str, Builder)] = &[
    ("client_secret", client_secret),
    ("client_certificate", client_certificate_pem),
    ("client_certificate_pfx", client_certificate_pfx),
    ("workload_identity", workload_identity),
    ("imds", imds),
    ("imds_user_assigned", imds_user_assigned),
    ("azure_arc", azure_arc),
    ("service_fabric", service_fabric),
    ("cloud_shell", cloud_shell),
    ("azure_ml", azure_ml),
    ("app_service", app_service),
    ("azure_cli", azure_cli),
    ("azure_developer_cli", azure_developer_cli),
    ("azure_pipelines", azure_pipelines),
    ("transparent", transparent),
];

/// Computes every profile the seed supports.
pub(crate) fn profiles(inputs: &ProfileInputs<'_>) -> BTreeMap<String, Env> {
    PROFILES
        .iter()
        .filter_map(|(name, build)| Some((name.to_string(), build(inputs)?)))
        .collect()
}

/// `AZURE_AUTHORITY_HOST`, tenant and client id for an application.
fn app_env(inputs: &ProfileInputs<'_>, tenant: &str, client_id: &str) -> Env {
    with(
        base(inputs),
        &[
            ("AZURE_AUTHORITY_HOST", inputs.https_url.to_string()),
            ("AZURE_TENANT_ID", tenant.to_string()),
            ("AZURE_CLIENT_ID", client_id.to_string()),
        ],
    )
}

/// The first application with a secret that has not expired, and the secret.
fn secret_app<'a>(inputs: &ProfileInputs<'a>) -> Option<(&'a crate::config::Application, String)> {
    inputs.directory.seed.applications.iter().find_map(|a| {
        a.secrets
            .iter()
            .find(|s| s.expires.is_none_or(|e| e > inputs.now))
            .map(|s| (a, s.value.clone()))
    })
}

/// The first application with a secret that has not expired.
fn client_secret(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let (app, secret) = secret_app(inputs)?;
    let env = app_env(inputs, &app.tenant, &app.client_id);
    Some(with(env, &[("AZURE_CLIENT_SECRET", secret)]))
}

/// Transparent mode: the proxy and its CA bundle, the secret application's credentials and no
/// authority override; the first vault under its Azure name. Managed identity works too (IMDS
/// through `HTTP_PROXY`).
fn transparent(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let (proxy, bundle) = inputs.transparent?;
    // The base's loopback vault URL gives way to the Azure name below.
    let mut vars = trusting(base(inputs), bundle);
    vars.remove("AZURE_KEYVAULT_URL");
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        vars.insert(name.to_string(), proxy.to_string());
    }
    if let Some(vault) = inputs.directory.seed.key_vaults.first() {
        let url = format!(
            "https://{}.vault.azure.net",
            vault.name.to_ascii_lowercase()
        );
        vars.insert("AZURE_KEYVAULT_URL".into(), url);
    }
    if let Some((app, secret)) = secret_app(inputs) {
        vars.insert("AZURE_TENANT_ID".into(), app.tenant.clone());
        vars.insert("AZURE_CLIENT_ID".into(), app.client_id.clone());
        vars.insert("AZURE_CLIENT_SECRET".into(), secret);
    }
    Some(vars)
}

/// The first application with a generated certificate: the app's env, the certificate's
/// files and its PKCS#12 password.
fn certificate_app<'a>(
    inputs: &ProfileInputs<'a>,
) -> Option<(Env, &'a crate::pki::GeneratedCertificate, String)> {
    let (app, name, password) = inputs.directory.seed.applications.iter().find_map(|a| {
        a.certificates.iter().find_map(|c| {
            let name = c.generate.as_ref()?;
            Some((a, name, c.pfx_password.clone().unwrap_or_default()))
        })
    })?;
    let cert = inputs.directory.generated_certificate(name)?;
    Some((app_env(inputs, &app.tenant, &app.client_id), cert, password))
}

fn client_certificate_pem(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let (env, cert, _) = certificate_app(inputs)?;
    let path = cert.pem_path.display().to_string();
    Some(with(env, &[("AZURE_CLIENT_CERTIFICATE_PATH", path)]))
}

fn client_certificate_pfx(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let (env, cert, password) = certificate_app(inputs)?;
    let path = cert.pfx_path.display().to_string();
    Some(with(
        env,
        &[
            ("AZURE_CLIENT_CERTIFICATE_PATH", path),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", password),
        ],
    ))
}

fn workload_identity(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let file = inputs.federated_token_file?;
    let app = workload_app(&inputs.directory.seed)?;
    let env = app_env(inputs, &app.tenant, &app.client_id);
    let file = file.display().to_string();
    Some(with(env, &[("AZURE_FEDERATED_TOKEN_FILE", file)]))
}

fn azure_pipelines(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let conn = inputs.directory.seed.pipelines.first()?;
    let uri = format!(
        "{}/{}/{}/_apis/distributedtask/hubs/build/plans/{PLAN_ID}/jobs/{JOB_ID}/oidctoken",
        inputs.https_url, conn.organization, conn.project_id
    );
    Some(with(
        base(inputs),
        &[
            ("AZURE_AUTHORITY_HOST", inputs.https_url.to_string()),
            ("AZURESUBSCRIPTION_TENANT_ID", conn.tenant.clone()),
            ("AZURESUBSCRIPTION_CLIENT_ID", conn.client_id.clone()),
            (
                "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
                conn.service_connection_id.clone(),
            ),
            ("SYSTEM_ACCESSTOKEN", conn.system_access_token.clone()),
            ("SYSTEM_OIDCREQUESTURI", uri),
        ],
    ))
}

/// The directory holding the fake `az`/`azd`: next to this executable (they build into the
/// same target directory), if they are there.
fn fake_cli_dir() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let candidates = [dir.clone(), dir.parent()?.to_path_buf()];
    candidates
        .into_iter()
        .find(|d| d.join("az").is_file() && d.join("azd").is_file())
}

/// A config directory signed in as the seed user, and a `PATH` that finds the fake CLIs first.
fn cli_env(inputs: &ProfileInputs<'_>, var: &str, dir: &Path) -> Option<Env> {
    if inputs.directory.seed.users.is_empty() {
        return None;
    }
    let mut vars = with(
        base(inputs),
        &[(var, dir.display().to_string()), ("TZ", "UTC".to_string())],
    );
    let path = match (fake_cli_dir(), std::env::var("PATH")) {
        (Some(dir), Ok(path)) => Some(format!("{}:{path}", dir.display())),
        (Some(dir), Err(_)) => Some(dir.display().to_string()),
        (None, _) => None,
    };
    if let Some(path) = path {
        vars.insert("PATH".into(), path);
    }
    Some(vars)
}

fn azure_cli(inputs: &ProfileInputs<'_>) -> Option<Env> {
    cli_env(inputs, "AZURE_CONFIG_DIR", &inputs.cli_config_dirs.0)
}

fn azure_developer_cli(inputs: &ProfileInputs<'_>) -> Option<Env> {
    cli_env(inputs, "AZD_CONFIG_DIR", &inputs.cli_config_dirs.1)
}

/// The base environment when the seed has managed identities.
fn mi_base(inputs: &ProfileInputs<'_>) -> Option<Env> {
    (!inputs.directory.seed.managed_identities.is_empty()).then(|| base(inputs))
}

/// IMDS: Python and JS read `AZURE_POD_IDENTITY_AUTHORITY_HOST`; clients with the address
/// hard-coded (upstream Rust) reach the emulator as their HTTP proxy.
fn imds(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let url = inputs.http_url.to_string();
    Some(with(
        mi_base(inputs)?,
        &[
            ("AZURE_POD_IDENTITY_AUTHORITY_HOST", url.clone()),
            ("HTTP_PROXY", url.clone()),
            ("http_proxy", url),
        ],
    ))
}

fn imds_user_assigned(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let seed = &inputs.directory.seed;
    let user = seed
        .managed_identities
        .iter()
        .find(|m| !m.system_assigned)?;
    Some(with(
        imds(inputs)?,
        &[("AZURE_CLIENT_ID", user.client_id.clone())],
    ))
}

fn azure_arc(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let endpoint = format!("{}/arc/metadata/identity/oauth2/token", inputs.http_url);
    Some(with(
        mi_base(inputs)?,
        &[
            ("IDENTITY_ENDPOINT", endpoint),
            ("IMDS_ENDPOINT", inputs.http_url.to_string()),
        ],
    ))
}

fn service_fabric(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let bundle = inputs
        .ca_cert_path
        .with_file_name("service-fabric-bundle.pem");
    let endpoint = format!(
        "{}/metadata/identity/oauth2/token",
        inputs.service_fabric_url
    );
    let secret = inputs.directory.settings().managed_identity_secret.clone();
    Some(with(
        trusting(mi_base(inputs)?, &bundle),
        &[
            ("IDENTITY_ENDPOINT", endpoint),
            ("IDENTITY_HEADER", secret),
            (
                "IDENTITY_SERVER_THUMBPRINT",
                inputs.service_fabric_thumbprint.to_string(),
            ),
        ],
    ))
}

fn cloud_shell(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let endpoint = format!("{}/oauth2/token", inputs.http_url);
    Some(with(mi_base(inputs)?, &[("MSI_ENDPOINT", endpoint)]))
}

fn azure_ml(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let seed = &inputs.directory.seed;
    let system = seed.managed_identities.iter().find(|m| m.system_assigned)?;
    let secret = inputs.directory.settings().managed_identity_secret.clone();
    Some(with(
        mi_base(inputs)?,
        &[
            (
                "MSI_ENDPOINT",
                format!("{}/azureml/msi/token", inputs.http_url),
            ),
            ("MSI_SECRET", secret),
            ("DEFAULT_IDENTITY_CLIENT_ID", system.client_id.clone()),
        ],
    ))
}

fn app_service(inputs: &ProfileInputs<'_>) -> Option<Env> {
    let header = inputs
        .directory
        .settings()
        .app_service_identity_header
        .clone();
    Some(with(
        mi_base(inputs)?,
        &[
            (
                "IDENTITY_ENDPOINT",
                format!("{}/msi/token", inputs.http_url),
            ),
            ("IDENTITY_HEADER", header),
        ],
    ))
}

/// The first application with a federated credential for the emulator's Kubernetes issuer,
/// and that credential's subject.
pub(crate) fn workload_app(seed: &Seed) -> Option<&crate::config::Application> {
    seed.applications.iter().find(|a| {
        a.federated_credentials
            .iter()
            .any(|f| f.issuer == seed.kubernetes.issuer)
    })
}

/// The subject the workload application trusts.
pub(crate) fn workload_subject(seed: &Seed) -> Option<String> {
    workload_app(seed)?
        .federated_credentials
        .iter()
        .find(|f| f.issuer == seed.kubernetes.issuer)
        .map(|f| f.subject.clone())
}
