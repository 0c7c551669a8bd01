//! On-behalf-of: a middle-tier API that received a user's token exchanges it for a token to a
//! downstream resource, as that user. The middle tier authenticates with its client secret or
//! (feature `client_certificate`) its certificate. Tokens are cached per scope; each new scope
//! is a new exchange, so the user assertion must still be valid then.
//!
//! ```no_run
//! # async fn demo(incoming_user_token: String) -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::OnBehalfOfCredential;
//!
//! let credential = OnBehalfOfCredential::new(
//!     "11111111-1111-1111-1111-111111111111",
//!     "99999999-9999-9999-9999-999999999999".to_string(),
//!     incoming_user_token.into(),
//!     "emulator-middle-tier-secret".into(),
//!     None,
//! )?;
//! let token = credential.get_token(&["https://graph.microsoft.com/User.Read"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::credentials::Secret;
#[cfg(feature = "client_certificate")]
use azure_core::credentials::SecretBytes;
use azure_core::http::ClientOptions;

use crate::confidential::{Confidential, Label};
use crate::errors::require_non_empty;
use crate::os::Os;
use crate::token::{FetchRequest, FetchedToken};

const LABEL: Label = Label {
    name: "OnBehalfOfCredential",
    fragment: None,
};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
#[cfg(feature = "client_certificate")]
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Options for [`OnBehalfOfCredential`].
#[derive(Debug, Clone, Default)]
pub struct OnBehalfOfCredentialOptions {
    /// HTTP options: transport, retry, and `cloud` (the authority host).
    pub client_options: ClientOptions,
    /// Tenants besides the configured one that a request may name; `"*"` allows any.
    pub additionally_allowed_tenants: Vec<String>,
    /// The PKCS#12 password, for `OnBehalfOfCredential::with_certificate` (feature `client_certificate`).
    pub password: Option<Secret>,
    /// Send the certificate chain (`x5c`) with `OnBehalfOfCredential::with_certificate` (feature `client_certificate`).
    pub send_certificate_chain: bool,
    /// Environment and clock.
    pub os: Os,
}

/// How the middle tier proves itself.
enum ClientAuth {
    Secret(Secret),
    #[cfg(feature = "client_certificate")]
    Certificate(crate::client_certificate_credential::AssertionSigner),
}

/// Exchanges a user's token for another resource's token as that user.
pub struct OnBehalfOfCredential {
    core: Confidential,
    user_assertion: Secret,
    auth: ClientAuth,
}

impl std::fmt::Debug for OnBehalfOfCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnBehalfOfCredential")
            .field("tenant_id", &self.core.tenant_id)
            .field("client_id", &self.core.client_id)
            .finish_non_exhaustive()
    }
}

impl OnBehalfOfCredential {
    /// A middle tier `client_id` with `client_secret`, acting for the user of `user_assertion`
    /// (the access token the middle tier received).
    ///
    /// # Errors
    /// An invalid tenant id, an empty client id, assertion or secret, or an authority that is
    /// not https.
    pub fn new(
        tenant_id: &str,
        client_id: String,
        user_assertion: Secret,
        client_secret: Secret,
        options: Option<OnBehalfOfCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        require_non_empty(client_secret.secret(), "client secret")?;
        Self::build(
            tenant_id,
            &client_id,
            user_assertion,
            options.unwrap_or_default(),
            |_| Ok(ClientAuth::Secret(client_secret)),
        )
    }

    /// A middle tier `client_id` with its certificate (PKCS#12 with `options.password`, or PEM
    /// with the private key), acting for the user of `user_assertion`.
    ///
    /// # Errors
    /// As [`new`](Self::new), and a certificate that does not parse.
    #[cfg(feature = "client_certificate")]
    pub fn with_certificate(
        tenant_id: &str,
        client_id: String,
        user_assertion: Secret,
        certificate: SecretBytes,
        options: Option<OnBehalfOfCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        Self::build(
            tenant_id,
            &client_id,
            user_assertion,
            options.unwrap_or_default(),
            |options| {
                crate::client_certificate_credential::AssertionSigner::new(
                    &certificate,
                    options.password.as_ref(),
                    options.send_certificate_chain,
                )
                .map(ClientAuth::Certificate)
            },
        )
    }

    fn build(
        tenant_id: &str,
        client_id: &str,
        user_assertion: Secret,
        options: OnBehalfOfCredentialOptions,
        auth: impl FnOnce(&OnBehalfOfCredentialOptions) -> azure_core::Result<ClientAuth>,
    ) -> azure_core::Result<Arc<Self>> {
        require_non_empty(user_assertion.secret(), "user assertion")?;
        let auth = auth(&options)?;
        let core = Confidential::new(
            LABEL,
            tenant_id,
            client_id,
            options.client_options,
            options.additionally_allowed_tenants,
            options.os,
        )?;
        Ok(Arc::new(Self {
            core,
            user_assertion,
            auth,
        }))
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> azure_core::Result<FetchedToken> {
        let scope = request.scopes.join(" ");
        let mut form = vec![
            ("client_id", self.core.client_id.as_str()),
            ("grant_type", JWT_BEARER),
            ("requested_token_use", "on_behalf_of"),
            ("assertion", self.user_assertion.secret()),
            ("scope", scope.as_str()),
        ];
        #[cfg(feature = "client_certificate")]
        let client_assertion: String;
        match &self.auth {
            ClientAuth::Secret(secret) => form.push(("client_secret", secret.secret())),
            #[cfg(feature = "client_certificate")]
            ClientAuth::Certificate(signer) => {
                let audience = self.core.client.token_url(request.tenant)?.to_string();
                client_assertion =
                    signer.assertion(&audience, &self.core.client_id, &self.core.os)?;
                form.push(("client_assertion", client_assertion.as_str()));
                form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
            }
        }
        if let Some(claims) = request.claims.as_deref() {
            form.push(("claims", claims));
        }
        self.core
            .client
            .request_token(request.context, request.tenant, &form, &self.core.os)
            .await
    }
}

crate::cached::cached_token_credential!(confidential OnBehalfOfCredential);
