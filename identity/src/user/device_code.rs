//! Signs a user in with the device code flow: the user opens a page on any device, types the
//! code this credential shows, and signs in there; the credential polls until they have.
//!
//! | Input | Default |
//! |---|---|
//! | tenant id | `organizations` (the user's own tenant) |
//! | client id | the Azure CLI's public client, as the other Azure SDKs use |
//! | authority host | `client_options.cloud`, else `AZURE_AUTHORITY_HOST`, else the public cloud |
//! | prompt | prints Entra's message to stderr |
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use std::sync::Arc;
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::{DeviceCodeCredential, DeviceCodeCredentialOptions};
//!
//! let credential = DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
//!     user_prompt: Some(Arc::new(|info| println!("{}", info.message))),
//!     ..Default::default()
//! }))?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::http::ClientOptions;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::{
    Account, AuthenticationRecord, DEVELOPER_SIGN_ON_CLIENT_ID, ORGANIZATIONS, UserGrant,
    parse_user_grant, user_scope,
};
use crate::confidential::{Confidential, Label};
use crate::entra::{Seconds, error_from_response};
use crate::errors::credential_error;
use crate::os::Os;
use crate::token::FetchRequest;

const LABEL: Label = Label {
    name: "DeviceCodeCredential",
    fragment: None,
};

/// Entra's longest device-code lifetime (15 minutes) with room to spare: the bound on one
/// `get_token` of this credential.
const DEADLINE: Duration = Duration::minutes(20);

/// What the user needs to sign in: the code, where to type it, and Entra's sentence saying so.
#[derive(Debug, Clone)]
pub struct DeviceCodeInfo {
    /// The code to type.
    pub user_code: String,
    /// The page to type it on.
    pub verification_uri: String,
    /// Entra's instructions ("To sign in, use a web browser to open the page … and enter the
    /// code … to authenticate.").
    pub message: String,
    /// When the code stops working.
    pub expires_on: OffsetDateTime,
}

/// Shows the user a [`DeviceCodeInfo`].
pub type DeviceCodePrompt = Arc<dyn Fn(&DeviceCodeInfo) + Send + Sync>;

/// Options for [`DeviceCodeCredential`].
#[derive(Clone, Default)]
pub struct DeviceCodeCredentialOptions {
    /// The tenant; default `organizations`.
    pub tenant_id: Option<String>,
    /// The public client; default the Azure CLI's (`04b07795-8ddb-461a-bbee-02f9e1bf7b46`).
    pub client_id: Option<String>,
    /// HTTP options: transport, retry, and `cloud` (the authority host).
    pub client_options: ClientOptions,
    /// How to show the code; default: print the message to stderr.
    pub user_prompt: Option<DeviceCodePrompt>,
    /// An account signed in before ([`DeviceCodeCredential::authenticate`], or another Azure
    /// Identity library's record): its refresh token — from this process, or from the
    /// persistent cache — is used before the user is asked again.
    pub authentication_record: Option<AuthenticationRecord>,
    /// Never prompt from `get_token`: fail until [`DeviceCodeCredential::authenticate`] ran.
    pub disable_automatic_authentication: bool,
    /// Tenants besides the configured one that a request may name; `"*"` allows any.
    pub additionally_allowed_tenants: Vec<String>,
    /// Keep the signed-in account's tokens across runs (and share them with the other Azure
    /// Identity libraries) in MSAL's token-cache file.
    pub token_cache_persistence_options: Option<super::persistent::TokenCachePersistenceOptions>,
    /// Environment, clock and waiting (polling waits through `os.sleep`).
    pub os: Os,
}

impl std::fmt::Debug for DeviceCodeCredentialOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCodeCredentialOptions")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("user_prompt", &self.user_prompt.as_ref().map(|_| "<fn>"))
            .field("authentication_record", &self.authentication_record)
            .field(
                "disable_automatic_authentication",
                &self.disable_automatic_authentication,
            )
            .finish_non_exhaustive()
    }
}

/// Signs a user in with a device code.
pub struct DeviceCodeCredential {
    core: Confidential,
    account: Account,
    prompt: DeviceCodePrompt,
}

impl std::fmt::Debug for DeviceCodeCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCodeCredential")
            .field("tenant_id", &self.core.tenant_id)
            .field("client_id", &self.core.client_id)
            .field("account", &self.account.record().map(|r| r.username))
            .finish_non_exhaustive()
    }
}

/// The device-code endpoint's answer (v2; v1's `verification_url` accepted too).
#[derive(Deserialize)]
struct DeviceCodeResponse {
    device_code: String,
    user_code: String,
    #[serde(alias = "verification_url")]
    verification_uri: String,
    expires_in: Seconds,
    #[serde(default)]
    interval: Option<Seconds>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize, Default)]
struct PollError {
    error: Option<String>,
}

/// Prints the message to stderr, as the other SDKs' default prompt does.
fn print_to_stderr(info: &DeviceCodeInfo) {
    eprintln!("{}", info.message);
}

impl DeviceCodeCredential {
    /// Creates the credential.
    ///
    /// # Errors
    /// An invalid tenant id, or an authority that is not https.
    pub fn new(options: Option<DeviceCodeCredentialOptions>) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let account = Account::new(
            options.authentication_record,
            !options.disable_automatic_authentication,
        )
        .persisted(
            options.token_cache_persistence_options.as_ref(),
            &options.os,
        )?;
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
        .with_deadline(DEADLINE);
        Ok(Arc::new(Self {
            core,
            account,
            prompt: options
                .user_prompt
                .unwrap_or_else(|| Arc::new(print_to_stderr)),
        }))
    }

    /// The device code flow: get a code, show it, poll until the user has signed in.
    async fn flow(&self, request: &FetchRequest<'_>) -> azure_core::Result<UserGrant> {
        let scope = user_scope(request.scopes);
        let form = [
            ("client_id", self.core.client_id.as_str()),
            ("scope", scope.as_str()),
        ];
        let response = self
            .core
            .client
            .post(request.context, request.tenant, "devicecode", &form)
            .await?;
        if !response.status().is_success() {
            return Err(error_from_response(response));
        }
        let code: DeviceCodeResponse =
            serde_json::from_slice(response.body().as_ref()).map_err(|e| {
                azure_core::Error::with_error(
                    azure_core::error::ErrorKind::DataConversion,
                    e,
                    "the device-code endpoint's answer is not the expected JSON",
                )
            })?;
        let now = self.core.os.now();
        let lifetime = code.expires_in.value().unwrap_or(900).clamp(1, 3600);
        let info = DeviceCodeInfo {
            message: code.message.clone().unwrap_or_else(|| {
                format!(
                    "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
                    code.verification_uri, code.user_code
                )
            }),
            user_code: code.user_code.clone(),
            verification_uri: code.verification_uri.clone(),
            expires_on: now + Duration::seconds(lifetime),
        };
        (self.prompt)(&info);
        self.poll(request, &code, info.expires_on).await
    }

    /// Polls — at once, then at the server's interval (longer after `slow_down`) — until the
    /// user has signed in, declined, or the code expired.
    async fn poll(
        &self,
        request: &FetchRequest<'_>,
        code: &DeviceCodeResponse,
        expires_on: OffsetDateTime,
    ) -> azure_core::Result<UserGrant> {
        let mut interval = code
            .interval
            .as_ref()
            .and_then(Seconds::value)
            .unwrap_or(5)
            .clamp(0, 60);
        let form = [
            ("client_id", self.core.client_id.as_str()),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", code.device_code.as_str()),
            ("client_info", "1"),
        ];
        loop {
            if self.core.os.now() >= expires_on {
                return Err(credential_error(
                    "the device code expired before the user signed in; call get_token again for a new code",
                ));
            }
            let response = self
                .core
                .client
                .post(request.context, request.tenant, "token", &form)
                .await?;
            if response.status().is_success() {
                return parse_user_grant(&self.core, response.body().as_ref());
            }
            let error: PollError =
                serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
            match error.error.as_deref() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += 5,
                _ => return Err(error_from_response(response)),
            }
            self.core.os.sleep.sleep(Duration::seconds(interval)).await;
        }
    }
}

super::interactive_user_credential!(
    DeviceCodeCredential,
    "The sign-in failed, was declined, or the code expired."
);
crate::cached::cached_token_credential!(confidential DeviceCodeCredential);
