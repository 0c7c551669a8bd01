//! Redeems an authorization code that a web app obtained elsewhere (its own redirect handler)
//! for the signed-in user's tokens, then keeps the user signed in with the refresh token the
//! code brought. A code is good once: when the refresh token stops working, the app must send
//! the user through sign-in again.
//!
//! ```no_run
//! # async fn demo(code_from_redirect: String) -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::{AuthorizationCodeCredential, AuthorizationCodeCredentialOptions};
//!
//! let credential = AuthorizationCodeCredential::new(
//!     "11111111-1111-1111-1111-111111111111",
//!     "abababab-abab-4bab-8bab-abababababab".to_string(),
//!     code_from_redirect.into(),
//!     "http://localhost:8080/callback".to_string(),
//!     Some(AuthorizationCodeCredentialOptions {
//!         client_secret: Some("emulator-web-app-secret".into()),
//!         ..Default::default()
//!     }),
//! )?;
//! let token = credential.get_token(&["https://graph.microsoft.com/User.Read"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::{Arc, Mutex};

use azure_core::credentials::Secret;
use azure_core::http::ClientOptions;

use super::{Account, AuthenticationRecord, SignIn, UserGrant, parse_user_grant, user_scope};
use crate::confidential::{Confidential, Label};
use crate::entra::error_from_response;
use crate::errors::{credential_error, require_non_empty};
use crate::os::Os;
use crate::token::{FetchRequest, FetchedToken};

const LABEL: Label = Label {
    name: "AuthorizationCodeCredential",
    fragment: None,
};

/// Options for [`AuthorizationCodeCredential`].
#[derive(Debug, Clone, Default)]
pub struct AuthorizationCodeCredentialOptions {
    /// The client secret of a confidential (web) app; none for a public client.
    pub client_secret: Option<Secret>,
    /// The PKCE verifier, when the authorization request sent a `code_challenge`.
    pub code_verifier: Option<Secret>,
    /// HTTP options: transport, retry, and `cloud` (the authority host).
    pub client_options: ClientOptions,
    /// Tenants besides the configured one that a request may name; `"*"` allows any.
    pub additionally_allowed_tenants: Vec<String>,
    /// Keep the signed-in account's tokens across runs (and share them with the other Azure
    /// Identity libraries) in MSAL's token-cache file.
    pub token_cache_persistence_options: Option<super::persistent::TokenCachePersistenceOptions>,
    /// Environment and clock.
    pub os: Os,
}

/// Redeems an authorization code for a user's tokens.
pub struct AuthorizationCodeCredential {
    core: Confidential,
    account: Account,
    code: Mutex<Option<Secret>>,
    redirect_uri: String,
    client_secret: Option<Secret>,
    code_verifier: Option<Secret>,
}

impl std::fmt::Debug for AuthorizationCodeCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationCodeCredential")
            .field("tenant_id", &self.core.tenant_id)
            .field("client_id", &self.core.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

const SIGN_IN_AGAIN: &str = "the user must sign in again: the authorization code was redeemed and \
     the refresh token it brought no longer works; send the user through the authorization \
     endpoint and create a new AuthorizationCodeCredential with the new code";

impl AuthorizationCodeCredential {
    /// Creates a credential that redeems `authorization_code`, which the authorization endpoint
    /// sent to `redirect_uri` for `client_id`.
    ///
    /// # Errors
    /// An invalid tenant id, an empty client id, code or redirect URI, or an authority that is
    /// not https.
    pub fn new(
        tenant_id: &str,
        client_id: String,
        authorization_code: Secret,
        redirect_uri: String,
        options: Option<AuthorizationCodeCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        require_non_empty(authorization_code.secret(), "authorization code")?;
        require_non_empty(&redirect_uri, "redirect URI")?;
        let account = Account::new(None, true).persisted(
            options.token_cache_persistence_options.as_ref(),
            &options.os,
        )?;
        let core = Confidential::new(
            LABEL,
            tenant_id,
            &client_id,
            options.client_options,
            options.additionally_allowed_tenants,
            options.os,
        )?;
        Ok(Arc::new(Self {
            core,
            account,
            code: Mutex::new(Some(authorization_code)),
            redirect_uri,
            client_secret: options.client_secret,
            code_verifier: options.code_verifier,
        }))
    }

    /// The account the code signed in, once it was redeemed.
    pub fn authentication_record(&self) -> Option<AuthenticationRecord> {
        self.account.record()
    }

    fn client_auth(&self) -> Vec<(&str, &str)> {
        self.client_secret
            .as_ref()
            .map(|s| vec![("client_secret", s.secret())])
            .unwrap_or_default()
    }

    async fn fetch(&self, request: FetchRequest<'_>) -> azure_core::Result<FetchedToken> {
        let client_auth = self.client_auth();
        SignIn {
            core: &self.core,
            account: &self.account,
            client_auth: &client_auth,
            cannot_sign_in: Some(SIGN_IN_AGAIN),
        }
        .acquire(request, |r| async move { self.redeem(&r).await })
        .await
    }

    /// Redeems the code (once).
    async fn redeem(&self, request: &FetchRequest<'_>) -> azure_core::Result<UserGrant> {
        let code = self
            .code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| credential_error(SIGN_IN_AGAIN))?;
        let scope = user_scope(request.scopes);
        let mut form = vec![
            ("client_id", self.core.client_id.as_str()),
            ("grant_type", "authorization_code"),
            ("code", code.secret()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("scope", scope.as_str()),
            ("client_info", "1"),
        ];
        if let Some(verifier) = &self.code_verifier {
            form.push(("code_verifier", verifier.secret()));
        }
        form.extend(self.client_auth());
        if let Some(claims) = request.claims.as_deref() {
            form.push(("claims", claims));
        }
        let response = self
            .core
            .client
            .post(request.context, request.tenant, "token", &form)
            .await?;
        if !response.status().is_success() {
            return Err(error_from_response(response));
        }
        parse_user_grant(&self.core, response.body().as_ref())
    }
}

crate::cached::cached_token_credential!(confidential AuthorizationCodeCredential);
