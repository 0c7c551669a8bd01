//! `DefaultAzureCredential`: the chain every other Azure SDK offers, built so that its known
//! danger (a configuration mistake silently authenticating as a different identity) cannot
//! happen.
//!
//! Order: [`EnvironmentCredential`] → [`WorkloadIdentityCredential`] →
//! [`ManagedIdentityCredential`] → [`AzureCliCredential`] → [`AzureDeveloperCliCredential`].
//!
//! - A source is skipped only when it is **unavailable** (not configured here). A configured
//!   source that fails stops the chain with its error (see [`crate::ChainedTokenCredential`]).
//! - The first source that works is used for every later call.
//! - `AZURE_TOKEN_CREDENTIALS` narrows the chain, as in the Python, .NET, JS, Go and Java SDKs:
//!   `dev` (Azure CLI, Azure Developer CLI), `prod` (environment, workload identity, managed
//!   identity), or one credential's name in lower case (`environmentcredential`,
//!   `workloadidentitycredential`, `managedidentitycredential`, `azureclicredential`,
//!   `azuredeveloperclicredential`). With
//!   [`require_azure_token_credentials`](DefaultAzureCredentialOptions::require_azure_token_credentials)
//!   the variable must be set, so production can never fall back to a developer's sign-in.
//! - `AZURE_CLIENT_ID` selects the user-assigned managed identity (and workload identity's
//!   application).
//! - Managed identity via IMDS is probed once with a short timeout (1 s by default) so that off
//!   Azure the chain moves on at once (upstream's managed identity can take 70–90 s to fail).
//!   With `AZURE_TOKEN_CREDENTIALS=managedidentitycredential` there is no probe.
//! - Which source was used is logged (`tracing`, info).
//!
//! When to use it: applications that run both on developer machines and in Azure. For a single
//! known environment, construct that credential directly; it is simpler to reason about.
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::DefaultAzureCredential;
//!
//! let credential = DefaultAzureCredential::new(None)?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::ClientOptions;

use crate::chained::Chain;
use crate::errors::{credential_error, is_unavailable, unavailable};
use crate::os::Os;
use crate::{
    AzureCliCredential, AzureCliCredentialOptions, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialOptions, ClientAssertionCredentialOptions, EnvironmentCredential,
    EnvironmentCredentialOptions, Executor, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};

/// `AZURE_TOKEN_CREDENTIALS`.
const AZURE_TOKEN_CREDENTIALS: &str = "AZURE_TOKEN_CREDENTIALS";
const NAMES: [&str; 5] = [
    "environmentcredential",
    "workloadidentitycredential",
    "managedidentitycredential",
    "azureclicredential",
    "azuredeveloperclicredential",
];

/// Options for constructing a [`DefaultAzureCredential`].
#[derive(Debug, Clone, Default)]
pub struct DefaultAzureCredentialOptions {
    /// HTTP options for the HTTP-based sources.
    pub client_options: ClientOptions,
    /// The user-assigned managed identity's client id (default `AZURE_CLIENT_ID`).
    pub managed_identity_client_id: Option<String>,
    /// How long the one IMDS probe may take (default 1 s).
    pub imds_probe_timeout: Option<time::Duration>,
    /// Fail construction unless `AZURE_TOKEN_CREDENTIALS` is set.
    pub require_azure_token_credentials: bool,
    /// Runs `az`/`azd`.
    pub executor: Option<Arc<dyn Executor>>,
    /// Environment, files, clock and sleep.
    pub os: Os,
}

/// A source that could not be constructed: reported when the chain reaches it.
#[derive(Debug)]
struct Unconstructed {
    error: String,
    unavailable: bool,
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TokenCredential for Unconstructed {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Err(if self.unavailable {
            unavailable(self.error.clone())
        } else {
            credential_error(self.error.clone())
        })
    }
}

/// Managed identity inside the chain: IMDS is probed once first; "no identity assigned" on a
/// system-assigned request means unavailable.
#[derive(Debug)]
struct ChainManagedIdentity {
    inner: Arc<ManagedIdentityCredential>,
    probe_timeout: Option<time::Duration>,
    probed: tokio::sync::OnceCell<bool>,
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TokenCredential for ChainManagedIdentity {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if let (Some(timeout), true) = (self.probe_timeout, self.inner.is_imds()) {
            let present = *self
                .probed
                .get_or_init(|| async { self.inner.probe_imds(timeout).await })
                .await;
            if !present {
                return Err(unavailable(format!(
                    "no IMDS endpoint answered within {} ms; this does not look like an Azure host with a managed identity",
                    timeout.whole_milliseconds()
                )));
            }
        }
        match self.inner.get_token(scopes, options).await {
            Err(e) if !self.inner.is_user_assigned() && status_400(&e) => Err(unavailable(
                format!("no managed identity is assigned to this resource ({e})"),
            )),
            other => other,
        }
    }
}

fn status_400(e: &azure_core::Error) -> bool {
    let inner = std::error::Error::source(e).and_then(|s| s.downcast_ref::<azure_core::Error>());
    [Some(e), inner].into_iter().flatten().any(
        |e| matches!(e.kind(), ErrorKind::HttpResponse { status, .. } if u16::from(*status) == 400),
    )
}

/// The chain every other Azure SDK offers. See the module docs for the design.
#[derive(Debug)]
pub struct DefaultAzureCredential {
    chain: Chain,
}

impl DefaultAzureCredential {
    /// Builds the chain from the environment.
    ///
    /// # Errors
    /// An invalid `AZURE_TOKEN_CREDENTIALS`, or none when it is required.
    pub fn new(options: Option<DefaultAzureCredentialOptions>) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let selection = options
            .os
            .var(AZURE_TOKEN_CREDENTIALS)
            .map(|v| v.trim().to_ascii_lowercase());
        let wanted: Vec<&str> = match selection.as_deref() {
            None if options.require_azure_token_credentials => {
                return Err(credential_error(format!(
                    "{AZURE_TOKEN_CREDENTIALS} must be set: use 'dev', 'prod', or one of {}",
                    NAMES.join(", ")
                )));
            }
            None => NAMES.to_vec(),
            Some("dev") => vec!["azureclicredential", "azuredeveloperclicredential"],
            Some("prod") => vec![
                "environmentcredential",
                "workloadidentitycredential",
                "managedidentitycredential",
            ],
            Some(name) if NAMES.contains(&name) => vec![name],
            Some(other) => {
                return Err(credential_error(format!(
                    "Invalid value for {AZURE_TOKEN_CREDENTIALS}: '{other}'. Valid values are 'dev', 'prod', or one of {}",
                    NAMES.join(", ")
                )));
            }
        };
        let only_managed_identity = wanted == ["managedidentitycredential"];
        let sources = wanted
            .into_iter()
            .map(|name| source(name, &options, only_managed_identity))
            .collect();
        Ok(Arc::new(Self {
            chain: Chain::new(
                "DefaultAzureCredential",
                "To fix this, configure one of them: set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH), run in Azure with a managed identity, or sign in with `az login` / `azd auth login`. See https://aka.ms/azsdk/rust/identity/troubleshoot",
                sources,
            ),
        }))
    }
}

fn constructed(
    name: &str,
    result: azure_core::Result<Arc<dyn TokenCredential>>,
) -> (String, Arc<dyn TokenCredential>) {
    let credential = result.unwrap_or_else(|e| {
        Arc::new(Unconstructed {
            unavailable: is_unavailable(&e),
            error: e.to_string(),
        })
    });
    (name.to_string(), credential)
}

fn source(
    name: &str,
    options: &DefaultAzureCredentialOptions,
    only_managed_identity: bool,
) -> (String, Arc<dyn TokenCredential>) {
    match name {
        "environmentcredential" => constructed("EnvironmentCredential", environment(options)),
        "workloadidentitycredential" => {
            constructed("WorkloadIdentityCredential", workload_identity(options))
        }
        "managedidentitycredential" => constructed(
            "ManagedIdentityCredential",
            managed_identity(options, only_managed_identity),
        ),
        "azureclicredential" => constructed("AzureCliCredential", azure_cli(options)),
        _ => constructed("AzureDeveloperCliCredential", azure_developer_cli(options)),
    }
}

type Built = azure_core::Result<Arc<dyn TokenCredential>>;

fn environment(options: &DefaultAzureCredentialOptions) -> Built {
    let credential = EnvironmentCredential::new(Some(EnvironmentCredentialOptions {
        client_options: options.client_options.clone(),
        os: options.os.clone(),
    }))?;
    Ok(credential)
}

fn workload_identity(options: &DefaultAzureCredentialOptions) -> Built {
    let credential = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: options.client_options.clone(),
            os: options.os.clone(),
            ..Default::default()
        },
        ..Default::default()
    }))?;
    Ok(credential)
}

/// Managed identity in a chain probes IMDS once first (unless it is the only source).
fn managed_identity(options: &DefaultAzureCredentialOptions, only_managed_identity: bool) -> Built {
    let client_id = options
        .managed_identity_client_id
        .clone()
        .or_else(|| options.os.var("AZURE_CLIENT_ID"));
    let inner = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(UserAssignedId::ClientId),
        client_options: options.client_options.clone(),
        os: options.os.clone(),
        ..Default::default()
    }))?;
    let probe_timeout = options
        .imds_probe_timeout
        .unwrap_or(time::Duration::seconds(1));
    Ok(Arc::new(ChainManagedIdentity {
        inner,
        probe_timeout: (!only_managed_identity).then_some(probe_timeout),
        probed: tokio::sync::OnceCell::new(),
    }))
}

fn azure_cli(options: &DefaultAzureCredentialOptions) -> Built {
    let credential = AzureCliCredential::new(Some(AzureCliCredentialOptions {
        executor: options.executor.clone(),
        os: options.os.clone(),
        ..Default::default()
    }))?;
    Ok(credential)
}

fn azure_developer_cli(options: &DefaultAzureCredentialOptions) -> Built {
    let credential = AzureDeveloperCliCredential::new(Some(AzureDeveloperCliCredentialOptions {
        executor: options.executor.clone(),
        os: options.os.clone(),
        ..Default::default()
    }))?;
    Ok(credential)
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TokenCredential for DefaultAzureCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.chain.get_token(scopes, options).await
    }
}
