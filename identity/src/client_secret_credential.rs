//! Authenticates an application (service principal) with a client secret.
//!
//! | Input | Required | Source |
//! |---|---|---|
//! | tenant id | yes | argument |
//! | client id | yes | argument |
//! | client secret | yes | argument |
//! | authority host | no | `client_options.cloud`, else `AZURE_AUTHORITY_HOST`, else the public cloud |
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::ClientSecretCredential;
//!
//! let credential = ClientSecretCredential::new(
//!     "11111111-1111-1111-1111-111111111111",
//!     "22222222-2222-2222-2222-222222222222".to_string(),
//!     "emulator-client-secret".into(),
//!     None,
//! )?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::credentials::Secret;
use azure_core::http::ClientOptions;

use crate::confidential::{Confidential, Label};
use crate::errors::require_non_empty;
use crate::os::Os;
use crate::token::FetchRequest;
use crate::token::FetchedToken;

const LABEL: Label = Label {
    name: "ClientSecretCredential",
    fragment: Some("client-secret"),
};

/// Options for constructing a new [`ClientSecretCredential`].
#[derive(Debug, Clone, Default)]
pub struct ClientSecretCredentialOptions {
    /// HTTP options: transport, retry, and `cloud` (the authority host).
    pub client_options: ClientOptions,
    /// Tenants besides the configured one that [`crate::TokenRequestExtras::tenant_id`] may
    /// name; `"*"` allows any. Empty by default. (Addition beyond upstream.)
    pub additionally_allowed_tenants: Vec<String>,
    /// A shared (distributed) cache under the in-memory one, for services with many replicas:
    /// one token request per identity and scope across them (see [`crate::shared_cache`]).
    /// (Addition beyond upstream.)
    pub shared_token_cache: Option<crate::SharedTokenCache>,
    /// Keep the application's tokens across runs in MSAL's persistent token cache, shared with
    /// the Python and JavaScript libraries' `cache_persistence_options` (see
    /// [`crate::TokenCachePersistenceOptions`]): a token another run or program cached is used
    /// until five minutes before it expires. (Addition beyond upstream.)
    pub token_cache_persistence_options: Option<crate::TokenCachePersistenceOptions>,
    /// Environment, files and clock. (Addition beyond upstream; defaults to the real ones.)
    pub os: Os,
}

/// Authenticates an application with a client secret.
pub struct ClientSecretCredential {
    core: Confidential,
    secret: Secret,
}

impl std::fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretCredential")
            .field("tenant_id", &self.core.tenant_id)
            .field("client_id", &self.core.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientSecretCredential {
    /// Creates a credential for `client_id` in `tenant_id` with `secret`.
    ///
    /// # Errors
    /// An invalid tenant id, an empty client id or secret, or an authority that is not https.
    pub fn new(
        tenant_id: &str,
        client_id: String,
        secret: Secret,
        options: Option<ClientSecretCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        require_non_empty(secret.secret(), "secret")?;
        let core = Confidential::new(
            LABEL,
            tenant_id,
            &client_id,
            options.client_options,
            options.additionally_allowed_tenants,
            options.os,
        )?
        .with_shared(options.shared_token_cache)
        .with_persistence(options.token_cache_persistence_options.as_ref())?;
        Ok(Arc::new(Self { core, secret }))
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> azure_core::Result<FetchedToken> {
        let scope = request.scopes.join(" ");
        let mut form = vec![
            ("client_id", self.core.client_id.as_str()),
            ("client_secret", self.secret.secret()),
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
        ];
        if let Some(claims) = request.claims.as_deref() {
            form.push(("claims", claims));
        }
        self.core
            .client
            .request_token(request.context, request.tenant, &form, &self.core.os)
            .await
    }
}

crate::cached::cached_token_credential!(confidential ClientSecretCredential);
