//! Authenticates an application with a client assertion supplied by the caller: a signed JWT
//! from another identity provider (workload identity federation) or from the caller's own
//! signing service.
//!
//! ```
//! use azure_core::credentials::{AccessToken, TokenCredential};
//! use azure_core::http::ClientMethodOptions;
//! use azure_identity::{ClientAssertion, ClientAssertionCredential, ManagedIdentityCredential};
//! use std::sync::Arc;
//!
//! #[derive(Debug)]
//! struct VmClientAssertion {
//!     credential: Arc<dyn TokenCredential>,
//!     scope: String,
//! }
//!
//! #[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
//! #[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
//! impl ClientAssertion for VmClientAssertion {
//!     async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
//!         Ok(self
//!             .credential
//!             .get_token(&[&self.scope], None)
//!             .await?
//!             .token
//!             .secret()
//!             .to_string())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     # return Ok(());
//!     let assertion = VmClientAssertion {
//!         credential: ManagedIdentityCredential::new(None)?,
//!         scope: String::from("api://AzureADTokenExchange/.default"),
//!     };
//!     let client_assertion_credential = ClientAssertionCredential::new(
//!         String::from("guid-for-aad-tenant-id"),
//!         String::from("guid-for-app-id-of-client-app-registration"),
//!         assertion,
//!         None,
//!     )?;
//!     let fic_scope = String::from("your-service-app.com/scope");
//!     let fic_token = client_assertion_credential.get_token(&[&fic_scope], None).await?;
//!     Ok(())
//! }
//! ```

use std::sync::Arc;

use azure_core::http::{ClientMethodOptions, ClientOptions};

use crate::confidential::{Confidential, Label};
use crate::os::Os;
use crate::token::FetchRequest;
use crate::token::FetchedToken;

const LABEL: Label = Label {
    name: "ClientAssertionCredential",
    fragment: None,
};

/// Represents an entity capable of supplying a client assertion.
#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
pub trait ClientAssertion: Send + Sync + std::fmt::Debug {
    /// Returns a client assertion (a signed JWT). Called once per token request, so it may
    /// return a fresh assertion each time.
    async fn secret(&self, options: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String>;
}

/// Options for constructing a new [`ClientAssertionCredential`].
#[derive(Debug, Clone, Default)]
pub struct ClientAssertionCredentialOptions {
    /// HTTP options: transport, retry, and `cloud` (the authority host).
    pub client_options: ClientOptions,
    /// Tenants besides the configured one that [`crate::TokenRequestExtras::tenant_id`] may
    /// name; `"*"` allows any. (Addition beyond upstream.)
    pub additionally_allowed_tenants: Vec<String>,
    /// A shared (distributed) cache under the in-memory one, for services with many replicas:
    /// one token request per identity and scope across them (see [`crate::shared_cache`]).
    /// (Addition beyond upstream.)
    pub shared_token_cache: Option<crate::SharedTokenCache>,
    /// Environment, files and clock. (Addition beyond upstream; defaults to the real ones.)
    pub os: Os,
}

/// Enables authentication of a Microsoft Entra service principal using a signed client
/// assertion.
pub struct ClientAssertionCredential<C> {
    core: Confidential,
    assertion: C,
}

impl<C> std::fmt::Debug for ClientAssertionCredential<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.core_label())
            .field("tenant_id", &self.core.tenant_id)
            .field("client_id", &self.core.client_id)
            .finish_non_exhaustive()
    }
}

impl<C: ClientAssertion> ClientAssertionCredential<C> {
    /// Creates a credential that authenticates `client_id` in `tenant_id` with assertions from
    /// `assertion`.
    ///
    /// # Errors
    /// An invalid tenant id, an empty client id, or an authority that is not https.
    pub fn new(
        tenant_id: String,
        client_id: String,
        assertion: C,
        options: Option<ClientAssertionCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        Self::with_label(LABEL, tenant_id, client_id, assertion, options).map(Arc::new)
    }
}

impl<C> ClientAssertionCredential<C> {
    fn core_label(&self) -> &'static str {
        self.core.label().name
    }
}

impl<C: ClientAssertion> ClientAssertionCredential<C> {
    /// Builds one that reports errors under another credential's name (workload identity,
    /// Pipelines).
    pub(crate) fn with_label(
        label: Label,
        tenant_id: String,
        client_id: String,
        assertion: C,
        options: Option<ClientAssertionCredentialOptions>,
    ) -> azure_core::Result<Self> {
        let options = options.unwrap_or_default();
        let core = Confidential::new(
            label,
            &tenant_id,
            &client_id,
            options.client_options,
            options.additionally_allowed_tenants,
            options.os,
        )?
        .with_shared(options.shared_token_cache);
        Ok(Self { core, assertion })
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> azure_core::Result<FetchedToken> {
        let method_options = ClientMethodOptions {
            context: request.context.clone(),
        };
        let assertion = self.assertion.secret(Some(method_options)).await?;
        self.core
            .client
            .request_with_assertion(&request, &self.core.client_id, &assertion, &self.core.os)
            .await
    }
}

crate::cached::cached_token_credential!(confidential impl<C: ClientAssertion> ClientAssertionCredential<C>);
