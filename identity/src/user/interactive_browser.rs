//! Signs a user in through the browser: the authorization code flow with PKCE, answered on a
//! loopback listener (feature `tokio`).
//!
//! The credential listens on `127.0.0.1` (a free port, or the port of `redirect_uri`), opens
//! the sign-in page through [`Os::browser`](crate::os::Os) (the platform's opener by
//! default), and waits — at most `timeout` — for the answer, in the query or as a form post,
//! checking its `state`; it then redeems the code with the PKCE verifier and checks the ID
//! token's `nonce`.
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::InteractiveBrowserCredential;
//!
//! let credential = InteractiveBrowserCredential::new(None)?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::ClientOptions;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::loopback::{Answer, Loopback};
use super::{
    Account, AuthenticationRecord, DEVELOPER_SIGN_ON_CLIENT_ID, ORGANIZATIONS, UserGrant,
    parse_user_grant, user_scope,
};
use crate::confidential::{Confidential, Label};
use crate::entra::error_from_response;
use crate::errors::credential_error;
use crate::os::Os;
use crate::token::FetchRequest;

const LABEL: Label = Label {
    name: "InteractiveBrowserCredential",
    fragment: None,
};

/// How long the credential waits for the user by default (the other SDKs wait 5 minutes).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Options for [`InteractiveBrowserCredential`].
#[derive(Debug, Clone, Default)]
pub struct InteractiveBrowserCredentialOptions {
    /// The tenant; default `organizations`.
    pub tenant_id: Option<String>,
    /// The public client; default the Azure CLI's (`04b07795-8ddb-461a-bbee-02f9e1bf7b46`).
    pub client_id: Option<String>,
    /// A loopback redirect URI (`http://localhost:PORT[/path]`) registered for the client;
    /// default `http://localhost:` with a free port.
    pub redirect_uri: Option<String>,
    /// The user name to prefill on the sign-in page.
    pub login_hint: Option<String>,
    /// How long to wait for the user; default 5 minutes.
    pub timeout: Option<Duration>,
    /// An account signed in before: its refresh token is used before the browser opens.
    pub authentication_record: Option<AuthenticationRecord>,
    /// Never open the browser from `get_token`: fail until
    /// [`InteractiveBrowserCredential::authenticate`] ran.
    pub disable_automatic_authentication: bool,
    /// HTTP options: transport, retry, and `cloud` (the authority host).
    pub client_options: ClientOptions,
    /// Tenants besides the configured one that a request may name; `"*"` allows any.
    pub additionally_allowed_tenants: Vec<String>,
    /// Keep the signed-in account's tokens across runs (and share them with the other Azure
    /// Identity libraries) in MSAL's token-cache file.
    pub token_cache_persistence_options: Option<super::persistent::TokenCachePersistenceOptions>,
    /// Environment, clock, waiting and the browser (`os.browser`).
    pub os: Os,
}

/// Signs a user in through the browser.
pub struct InteractiveBrowserCredential {
    core: Confidential,
    account: Account,
    redirect_uri: Option<String>,
    login_hint: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for InteractiveBrowserCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InteractiveBrowserCredential")
            .field("tenant_id", &self.core.tenant_id)
            .field("client_id", &self.core.client_id)
            .field("account", &self.account.record().map(|r| r.username))
            .finish_non_exhaustive()
    }
}

fn random_b64(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    // The system generator only fails when the OS has no entropy source at all.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A PKCE verifier and its S256 challenge.
fn pkce() -> (String, String) {
    let verifier = random_b64(32);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(digest.as_ref());
    (verifier, challenge)
}

impl InteractiveBrowserCredential {
    /// Creates the credential.
    ///
    /// # Errors
    /// An invalid tenant id, or an authority that is not https.
    pub fn new(
        options: Option<InteractiveBrowserCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let account = Account::new(
            options.authentication_record,
            !options.disable_automatic_authentication,
        )
        .persisted(
            options.token_cache_persistence_options.as_ref(),
            &options.os,
        )?;
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let deadline = time::Duration::try_from(timeout).unwrap_or(time::Duration::MAX)
            + time::Duration::minutes(1);
        let core = Confidential::new(
            LABEL,
            options.tenant_id.as_deref().unwrap_or(ORGANIZATIONS),
            options
                .client_id
                .as_deref()
                .unwrap_or(DEVELOPER_SIGN_ON_CLIENT_ID),
            options.client_options,
            options.additionally_allowed_tenants,
            options.os,
        )?
        .with_deadline(deadline);
        Ok(Arc::new(Self {
            core,
            account,
            redirect_uri: options.redirect_uri,
            login_hint: options.login_hint,
            timeout,
        }))
    }

    /// The authorization code flow with PKCE through the browser.
    async fn flow(&self, request: &FetchRequest<'_>) -> azure_core::Result<UserGrant> {
        let loopback = Loopback::bind(self.redirect_uri.as_deref()).await?;
        let (verifier, challenge) = pkce();
        let (state, nonce) = (random_b64(16), random_b64(16));
        let scope = user_scope(request.scopes);
        let mut url = self.core.client.endpoint(request.tenant, "authorize")?;
        {
            let mut query = url.query_pairs_mut();
            query.extend_pairs([
                ("client_id", self.core.client_id.as_str()),
                ("response_type", "code"),
                ("redirect_uri", loopback.redirect_uri.as_str()),
                ("scope", scope.as_str()),
                ("state", state.as_str()),
                ("nonce", nonce.as_str()),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("response_mode", "form_post"),
                ("client_info", "1"),
                ("prompt", "select_account"),
            ]);
            if let Some(hint) = &self.login_hint {
                query.append_pair("login_hint", hint);
            }
            if let Some(claims) = request.claims.as_deref() {
                query.append_pair("claims", claims);
            }
        }
        self.core.os.browser.open(url.as_str()).map_err(|e| {
            credential_error(format!(
                "could not open a browser for the sign-in page ({e}); open {url} yourself, or use DeviceCodeCredential on a machine without one"
            ))
        })?;
        let code = match loopback.wait(&state, self.timeout, &self.core.os).await? {
            Answer::Code(code) => code,
            Answer::Error { error, description } => {
                return Err(credential_error(format!("{error}: {description}")));
            }
        };
        self.redeem(request, &code, &loopback.redirect_uri, &verifier, &nonce)
            .await
    }

    async fn redeem(
        &self,
        request: &FetchRequest<'_>,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
    ) -> azure_core::Result<UserGrant> {
        let scope = user_scope(request.scopes);
        let form = [
            ("client_id", self.core.client_id.as_str()),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("scope", scope.as_str()),
            ("client_info", "1"),
        ];
        let response = self
            .core
            .client
            .post(request.context, request.tenant, "token", &form)
            .await?;
        if !response.status().is_success() {
            return Err(error_from_response(response));
        }
        let grant = parse_user_grant(&self.core, response.body().as_ref())?;
        if grant.nonce.as_deref().is_some_and(|n| n != nonce) {
            return Err(credential_error(
                "the ID token's nonce is not the one this sign-in sent: the answer belongs to another sign-in",
            ));
        }
        Ok(grant)
    }
}

super::interactive_user_credential!(
    InteractiveBrowserCredential,
    "The sign-in failed, was cancelled, or timed out."
);
crate::cached::cached_token_credential!(confidential InteractiveBrowserCredential);
