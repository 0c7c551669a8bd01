//! Developer tools: the Azure CLI, the Azure Developer CLI, and the credential that tries
//! both.

pub(crate) mod azure_cli;
pub(crate) mod azure_developer_cli;
pub(crate) mod executor;
pub(crate) mod process;

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

use azure_cli::{AzureCliCredential, AzureCliCredentialOptions};
use azure_developer_cli::{AzureDeveloperCliCredential, AzureDeveloperCliCredentialOptions};
use executor::Executor;

use crate::chained::Chain;
use crate::os::Os;

/// Options for constructing a new [`DeveloperToolsCredential`].
#[derive(Debug, Clone, Default)]
pub struct DeveloperToolsCredentialOptions {
    /// Runs the tools; default [`executor::new_executor`].
    pub executor: Option<Arc<dyn Executor>>,
    /// Environment (`PATH`), files, clock and sleep. (Addition beyond upstream.)
    pub os: Os,
}

/// Authenticates through developer tools such as the Azure CLI.
///
/// Tries `az`, then `azd`, and remembers the first that succeeds for later calls. A tool that
/// is *unavailable* (not installed, not signed in) is skipped; a tool that is set up but fails
/// stops the attempt, so a broken sign-in is reported instead of silently falling through to
/// another account. When every tool is unavailable, the error lists each and what to do.
///
/// ```no_run
/// # async fn demo() -> azure_core::Result<()> {
/// use azure_core::credentials::TokenCredential;
/// use azure_identity::DeveloperToolsCredential;
///
/// let credential = DeveloperToolsCredential::new(None)?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// # let _ = token;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DeveloperToolsCredential {
    chain: Chain,
}

impl DeveloperToolsCredential {
    /// Creates the credential.
    ///
    /// # Errors
    /// Never in practice; the signature matches the other credentials.
    pub fn new(options: Option<DeveloperToolsCredentialOptions>) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let az = AzureCliCredential::new(Some(AzureCliCredentialOptions {
            executor: options.executor.clone(),
            os: options.os.clone(),
            ..Default::default()
        }))?;
        let azd = AzureDeveloperCliCredential::new(Some(AzureDeveloperCliCredentialOptions {
            executor: options.executor.clone(),
            os: options.os.clone(),
            ..Default::default()
        }))?;
        Ok(Arc::new(Self {
            chain: Chain::new(
                "DeveloperToolsCredential",
                "To fix this, sign in with `az login` or `azd auth login`.",
                vec![
                    ("AzureCliCredential".to_string(), az),
                    ("AzureDeveloperCliCredential".to_string(), azd),
                ],
            ),
        }))
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TokenCredential for DeveloperToolsCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.chain.get_token(scopes, options).await
    }
}
