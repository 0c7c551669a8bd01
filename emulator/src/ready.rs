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
}

fn base(inputs: &ProfileInputs<'_>) -> BTreeMap<String, String> {
    let ca = inputs.ca_cert_path.display().to_string();
    let mut vars = BTreeMap::new();
    for name in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
    ] {
        vars.insert(name.to_string(), ca.clone());
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

/// Computes every profile the seed supports.
pub(crate) fn profiles(inputs: &ProfileInputs<'_>) -> BTreeMap<String, BTreeMap<String, String>> {
    let seed: &Seed = &inputs.directory.seed;
    let now = inputs.now;
    let authority = ("AZURE_AUTHORITY_HOST", inputs.https_url.to_string());
    let mut out = BTreeMap::new();
    if let Some((app, secret)) = seed.applications.iter().find_map(|a| {
        a.secrets
            .iter()
            .find(|s| s.expires.is_none_or(|e| e > now))
            .map(|s| (a, s))
    }) {
        out.insert(
            "client_secret".into(),
            with(
                base(inputs),
                &[
                    authority.clone(),
                    ("AZURE_TENANT_ID", app.tenant.clone()),
                    ("AZURE_CLIENT_ID", app.client_id.clone()),
                    ("AZURE_CLIENT_SECRET", secret.value.clone()),
                ],
            ),
        );
    }
    if let Some((app, name, password)) = seed.applications.iter().find_map(|a| {
        a.certificates.iter().find_map(|c| {
            let name = c.generate.as_ref()?;
            Some((a, name, c.pfx_password.clone().unwrap_or_default()))
        })
    }) && let Some(cert) = inputs.directory.generated_certificate(name)
    {
        let common = [
            authority.clone(),
            ("AZURE_TENANT_ID", app.tenant.clone()),
            ("AZURE_CLIENT_ID", app.client_id.clone()),
        ];
        out.insert(
            "client_certificate".into(),
            with(
                with(base(inputs), &common),
                &[(
                    "AZURE_CLIENT_CERTIFICATE_PATH",
                    cert.pem_path.display().to_string(),
                )],
            ),
        );
        out.insert(
            "client_certificate_pfx".into(),
            with(
                with(base(inputs), &common),
                &[
                    (
                        "AZURE_CLIENT_CERTIFICATE_PATH",
                        cert.pfx_path.display().to_string(),
                    ),
                    ("AZURE_CLIENT_CERTIFICATE_PASSWORD", password),
                ],
            ),
        );
    }
    if let (Some(file), Some(app)) = (inputs.federated_token_file, workload_app(seed)) {
        out.insert(
            "workload_identity".into(),
            with(
                base(inputs),
                &[
                    authority.clone(),
                    ("AZURE_TENANT_ID", app.tenant.clone()),
                    ("AZURE_CLIENT_ID", app.client_id.clone()),
                    ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
                ],
            ),
        );
    }
    managed_identity_profiles(inputs, &mut out);
    cli_profiles(inputs, &mut out);
    if let Some(conn) = seed.pipelines.first() {
        let uri = format!(
            "{}/{}/{}/_apis/distributedtask/hubs/build/plans/{PLAN_ID}/jobs/{JOB_ID}/oidctoken",
            inputs.https_url, conn.organization, conn.project_id
        );
        out.insert(
            "azure_pipelines".into(),
            with(
                base(inputs),
                &[
                    authority,
                    ("AZURESUBSCRIPTION_TENANT_ID", conn.tenant.clone()),
                    ("AZURESUBSCRIPTION_CLIENT_ID", conn.client_id.clone()),
                    (
                        "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
                        conn.service_connection_id.clone(),
                    ),
                    ("SYSTEM_ACCESSTOKEN", conn.system_access_token.clone()),
                    ("SYSTEM_OIDCREQUESTURI", uri),
                ],
            ),
        );
    }
    out
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

/// `azure_cli` and `azure_developer_cli`: config directories signed in as the seed user, and a
/// `PATH` that finds the fake CLIs first.
fn cli_profiles(inputs: &ProfileInputs<'_>, out: &mut BTreeMap<String, BTreeMap<String, String>>) {
    if inputs.directory.seed.users.is_empty() {
        return;
    }
    let path = match (fake_cli_dir(), std::env::var("PATH")) {
        (Some(dir), Ok(path)) => Some(format!("{}:{path}", dir.display())),
        (Some(dir), Err(_)) => Some(dir.display().to_string()),
        (None, _) => None,
    };
    let (az, azd) = &inputs.cli_config_dirs;
    for (name, var, dir) in [
        ("azure_cli", "AZURE_CONFIG_DIR", az),
        ("azure_developer_cli", "AZD_CONFIG_DIR", azd),
    ] {
        let mut vars = with(
            base(inputs),
            &[(var, dir.display().to_string()), ("TZ", "UTC".to_string())],
        );
        if let Some(path) = &path {
            vars.insert("PATH".into(), path.clone());
        }
        out.insert(name.into(), vars);
    }
}

/// `imds`, `imds_user_assigned` and `app_service`.
fn managed_identity_profiles(
    inputs: &ProfileInputs<'_>,
    out: &mut BTreeMap<String, BTreeMap<String, String>>,
) {
    let seed = &inputs.directory.seed;
    if seed.managed_identities.is_empty() {
        return;
    }
    // IMDS: Python and JS read AZURE_POD_IDENTITY_AUTHORITY_HOST; clients with the address
    // hard-coded (upstream Rust) reach the emulator as their HTTP proxy.
    let imds = with(
        base(inputs),
        &[
            (
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                inputs.http_url.to_string(),
            ),
            ("HTTP_PROXY", inputs.http_url.to_string()),
            ("http_proxy", inputs.http_url.to_string()),
        ],
    );
    if let Some(user) = seed.managed_identities.iter().find(|m| !m.system_assigned) {
        out.insert(
            "imds_user_assigned".into(),
            with(imds.clone(), &[("AZURE_CLIENT_ID", user.client_id.clone())]),
        );
    }
    out.insert("imds".into(), imds);
    let secret = inputs.directory.settings().managed_identity_secret.clone();
    out.insert(
        "azure_arc".into(),
        with(
            base(inputs),
            &[
                (
                    "IDENTITY_ENDPOINT",
                    format!("{}/arc/metadata/identity/oauth2/token", inputs.http_url),
                ),
                ("IMDS_ENDPOINT", inputs.http_url.to_string()),
            ],
        ),
    );
    let bundle = inputs
        .ca_cert_path
        .with_file_name("service-fabric-bundle.pem")
        .display()
        .to_string();
    out.insert(
        "service_fabric".into(),
        with(
            base(inputs),
            &[
                ("SSL_CERT_FILE", bundle.clone()),
                ("REQUESTS_CA_BUNDLE", bundle.clone()),
                ("CURL_CA_BUNDLE", bundle.clone()),
                ("NODE_EXTRA_CA_CERTS", bundle),
                (
                    "IDENTITY_ENDPOINT",
                    format!(
                        "{}/metadata/identity/oauth2/token",
                        inputs.service_fabric_url
                    ),
                ),
                ("IDENTITY_HEADER", secret.clone()),
                (
                    "IDENTITY_SERVER_THUMBPRINT",
                    inputs.service_fabric_thumbprint.to_string(),
                ),
            ],
        ),
    );
    out.insert(
        "cloud_shell".into(),
        with(
            base(inputs),
            &[("MSI_ENDPOINT", format!("{}/oauth2/token", inputs.http_url))],
        ),
    );
    if let Some(system) = seed.managed_identities.iter().find(|m| m.system_assigned) {
        out.insert(
            "azure_ml".into(),
            with(
                base(inputs),
                &[
                    (
                        "MSI_ENDPOINT",
                        format!("{}/azureml/msi/token", inputs.http_url),
                    ),
                    ("MSI_SECRET", secret),
                    ("DEFAULT_IDENTITY_CLIENT_ID", system.client_id.clone()),
                ],
            ),
        );
    }
    out.insert(
        "app_service".into(),
        with(
            base(inputs),
            &[
                (
                    "IDENTITY_ENDPOINT",
                    format!("{}/msi/token", inputs.http_url),
                ),
                (
                    "IDENTITY_HEADER",
                    inputs
                        .directory
                        .settings()
                        .app_service_identity_header
                        .clone(),
                ),
            ],
        ),
    );
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
