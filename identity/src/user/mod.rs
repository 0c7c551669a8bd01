//! What the user credentials share: the scopes a sign-in asks for, the token response with its
//! refresh token and account, the process-wide refresh-token store keyed by account, and the
//! silent-then-interactive path.
//!
//! A user credential first serves its access-token cache (the same cache and single flight as
//! every other credential), then redeems the account's refresh token, and only then signs the
//! user in again (device code, browser) — or, for the credentials that cannot (authorization
//! code, on-behalf-of), reports the failure.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};

use azure_core::credentials::{Secret, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use base64::Engine;
use serde::Deserialize;

use crate::confidential::Confidential;
use crate::entra::{error_from_response, parse_token_response};
use crate::errors::{credential_error, validate_scopes};
use crate::token::{FetchRequest, FetchedToken};

pub(crate) mod authentication_record;
pub(crate) mod authorization_code;
pub(crate) mod device_code;
#[cfg(feature = "tokio")]
pub(crate) mod interactive_browser;
#[cfg(feature = "secret_service")]
mod keyring;
#[cfg(feature = "tokio")]
mod loopback;
pub(crate) mod on_behalf_of;
pub(crate) mod persistent;

pub use authentication_record::AuthenticationRecord;

/// The public client the Azure CLI and the Azure Identity libraries sign users in with.
pub(crate) const DEVELOPER_SIGN_ON_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// The tenant user credentials sign in to by default: any work or school account's own.
pub(crate) const ORGANIZATIONS: &str = "organizations";

/// Scopes every user sign-in adds: a refresh token, an ID token and the user's profile.
const OIDC_SCOPES: [&str; 3] = ["offline_access", "openid", "profile"];

/// The requested scopes plus the OpenID ones, space-separated, each once.
pub(crate) fn user_scope(scopes: &[&str]) -> String {
    let mut all: Vec<&str> = scopes.to_vec();
    for s in OIDC_SCOPES {
        if !all.contains(&s) {
            all.push(s);
        }
    }
    all.join(" ")
}

/// What a user grant returned: the access token, and what keeps the user signed in.
pub(crate) struct UserGrant {
    pub(crate) token: FetchedToken,
    pub(crate) refresh_token: Option<Secret>,
    pub(crate) record: Option<AuthenticationRecord>,
    /// The ID token's `nonce`, for the browser flow to check.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) nonce: Option<String>,
    /// The ID token itself (kept in the persistent cache).
    pub(crate) id_token: Option<Secret>,
    /// The user's object id in the tenant (MSAL's `local_account_id`).
    pub(crate) local_account_id: Option<String>,
    /// The granted scopes, sorted (MSAL's `target`).
    pub(crate) target: String,
}

#[derive(Deserialize)]
struct UserFields {
    refresh_token: Option<String>,
    id_token: Option<String>,
    client_info: Option<String>,
    scope: Option<String>,
}

#[derive(Deserialize, Default)]
struct IdClaims {
    oid: Option<String>,
    tid: Option<String>,
    preferred_username: Option<String>,
    upn: Option<String>,
    nonce: Option<String>,
}

#[derive(Deserialize)]
struct ClientInfo {
    uid: String,
    utid: String,
}

/// Base64url (unpadded) JSON, as JWT segments and `client_info` are encoded.
pub(crate) fn b64_json<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `host[:port]` of the authority, as MSAL names its environment.
pub(crate) fn authority_host(core: &Confidential) -> String {
    let url = core.client.authority();
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        _ => url.to_string(),
    }
}

/// Parses a successful user token response: the token, the refresh token, and the account
/// from `client_info` and the ID token (whose signature the token endpoint's TLS vouches for,
/// as MSAL treats it).
pub(crate) fn parse_user_grant(core: &Confidential, body: &[u8]) -> azure_core::Result<UserGrant> {
    let token = parse_token_response(body, core.os.now())?;
    let fields: UserFields = serde_json::from_slice(body).map_err(|e| {
        Error::with_error(
            ErrorKind::DataConversion,
            e,
            "the token response is not JSON",
        )
    })?;
    let claims: IdClaims = fields
        .id_token
        .as_deref()
        .and_then(|t| t.split('.').nth(1))
        .and_then(b64_json)
        .unwrap_or_default();
    let info: Option<ClientInfo> = fields.client_info.as_deref().and_then(b64_json);
    let home_account_id = match (&info, &claims.oid, &claims.tid) {
        (Some(info), _, _) => Some(format!("{}.{}", info.uid, info.utid)),
        (None, Some(oid), Some(tid)) => Some(format!("{oid}.{tid}")),
        _ => None,
    };
    let username = claims.preferred_username.clone().or(claims.upn.clone());
    let record = match (home_account_id, username) {
        (Some(home_account_id), Some(username)) => Some(AuthenticationRecord {
            authority: authority_host(core),
            client_id: core.client_id.clone(),
            home_account_id,
            tenant_id: claims.tid.clone().unwrap_or_default(),
            username,
            version: "1.0".to_string(),
        }),
        _ => None,
    };
    let mut target: Vec<&str> = fields
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    target.sort_unstable();
    Ok(UserGrant {
        token,
        refresh_token: fields
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        record,
        nonce: claims.nonce,
        id_token: fields.id_token.filter(|t| !t.is_empty()).map(Secret::new),
        local_account_id: claims.oid,
        target: target.join(" "),
    })
}

/// Refresh tokens by account (authority, client, home account), shared by every credential
/// in the process: a credential given an [`AuthenticationRecord`] finds the account's token
/// that another credential's sign-in left. Bounded; never shown by `Debug`.
fn refresh_tokens() -> &'static Mutex<HashMap<String, Secret>> {
    static STORE: OnceLock<Mutex<HashMap<String, Secret>>> = OnceLock::new();
    STORE.get_or_init(Mutex::default)
}

/// How many accounts the store keeps (a process signs in a handful).
const MAX_ACCOUNTS: usize = 1024;

fn account_key(record: &AuthenticationRecord) -> String {
    format!(
        "{}|{}|{}",
        record.authority.to_ascii_lowercase(),
        record.client_id.to_ascii_lowercase(),
        record.home_account_id.to_ascii_lowercase()
    )
}

/// A user credential's account: who signed in (if anyone yet), and the lock that keeps two
/// scopes from starting two sign-ins at once.
#[derive(Debug)]
pub(crate) struct Account {
    record: Mutex<Option<AuthenticationRecord>>,
    sign_in: tokio::sync::Mutex<()>,
    /// Whether `get_token` may start an interactive sign-in.
    automatic: bool,
    /// Where the account's tokens persist across runs, if anywhere.
    persistent: Option<persistent::PersistentCache>,
}

impl Account {
    pub(crate) fn new(record: Option<AuthenticationRecord>, automatic: bool) -> Self {
        Self {
            record: Mutex::new(record),
            sign_in: tokio::sync::Mutex::new(()),
            automatic,
            persistent: None,
        }
    }

    /// The same account, persisting its tokens as `options` say.
    pub(crate) fn persisted(
        mut self,
        options: Option<&persistent::TokenCachePersistenceOptions>,
        os: &crate::os::Os,
    ) -> azure_core::Result<Self> {
        if let Some(options) = options {
            self.persistent = Some(persistent::PersistentCache::new(options, os)?);
        }
        Ok(self)
    }

    /// The signed-in account, if any.
    pub(crate) fn record(&self) -> Option<AuthenticationRecord> {
        self.record
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The account's refresh token: the one this process holds, else the persistent cache's
    /// (the CAE cache's for a CAE request).
    ///
    /// # Errors
    /// The persistent cache cannot be encrypted and may not be a plain file.
    async fn refresh_token(&self, cae: bool) -> azure_core::Result<Option<Secret>> {
        if let Some(cache) = &self.persistent {
            cache.check_usable().await?;
        }
        let Some(record) = self.record() else {
            return Ok(None);
        };
        let known = {
            let store = refresh_tokens().lock().unwrap_or_else(|e| e.into_inner());
            store.get(&account_key(&record)).cloned()
        };
        match (known, &self.persistent) {
            (Some(known), _) => Ok(Some(known)),
            (None, Some(cache)) => cache.refresh_token(&record, cae).await,
            (None, None) => Ok(None),
        }
    }

    /// Keeps the grant's account and refresh token (Entra rotates them: the newest wins), in
    /// the process and, when configured, in the persistent cache (the CAE one for `cae`).
    pub(crate) async fn remember(&self, grant: &UserGrant, tenant: &str, cae: bool) {
        self.remember_in_process(grant);
        if let (Some(cache), Some(record)) = (&self.persistent, self.record()) {
            cache.store(&record, grant, tenant, cae).await;
        }
    }

    fn remember_in_process(&self, grant: &UserGrant) {
        if let Some(record) = &grant.record {
            *self.record.lock().unwrap_or_else(|e| e.into_inner()) = Some(record.clone());
        }
        let (Some(record), Some(rt)) = (self.record(), &grant.refresh_token) else {
            return;
        };
        let mut store = refresh_tokens().lock().unwrap_or_else(|e| e.into_inner());
        if store.len() >= MAX_ACCOUNTS && !store.contains_key(&account_key(&record)) {
            store.clear();
        }
        store.insert(account_key(&record), rt.clone());
    }

    fn forget_refresh_token(&self) {
        if let Some(record) = self.record() {
            let mut store = refresh_tokens().lock().unwrap_or_else(|e| e.into_inner());
            store.remove(&account_key(&record));
        }
    }
}

/// Whether a refresh failed because the token is no good (expired, revoked, for another
/// client): the token endpoint refused it.
fn refused(error: &Error) -> bool {
    matches!(error.kind(), ErrorKind::HttpResponse { status, .. } if u16::from(*status) == 400 || u16::from(*status) == 401)
}

/// Redeems the account's refresh token for `request`'s scopes.
async fn refresh(
    core: &Confidential,
    request: &FetchRequest<'_>,
    refresh_token: &Secret,
    client_auth: &[(&str, &str)],
) -> azure_core::Result<UserGrant> {
    let scope = user_scope(request.scopes);
    let mut form = vec![
        ("client_id", core.client_id.as_str()),
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.secret()),
        ("scope", scope.as_str()),
        ("client_info", "1"),
    ];
    form.extend_from_slice(client_auth);
    if let Some(claims) = request.claims.as_deref() {
        form.push(("claims", claims));
    }
    let response = core
        .client
        .post(request.context, request.tenant, "token", &form)
        .await?;
    if !response.status().is_success() {
        return Err(error_from_response(response));
    }
    parse_user_grant(core, response.body().as_ref())
}

/// How a user credential signs the user in when no refresh token serves, and how it
/// authenticates its client on a refresh (a confidential client sends its secret).
pub(crate) struct SignIn<'c> {
    pub(crate) core: &'c Confidential,
    pub(crate) account: &'c Account,
    pub(crate) client_auth: &'c [(&'c str, &'c str)],
    /// What to say when the user must sign in again but this credential cannot.
    pub(crate) cannot_sign_in: Option<&'static str>,
}

impl<'c> SignIn<'c> {
    /// The silent path, then the interactive one: the account's refresh token if it still
    /// works, else a new sign-in (which the lock keeps to one at a time).
    pub(crate) async fn acquire<'a, I, Fut>(
        self,
        request: FetchRequest<'a>,
        interactive: I,
    ) -> azure_core::Result<FetchedToken>
    where
        I: FnOnce(FetchRequest<'a>) -> Fut,
        Fut: Future<Output = azure_core::Result<UserGrant>>,
    {
        let _one_at_a_time = self.account.sign_in.lock().await;
        if let Some(rt) = self.account.refresh_token(request.cae).await? {
            match refresh(self.core, &request, &rt, self.client_auth).await {
                Ok(grant) => {
                    self.account
                        .remember(&grant, request.tenant, request.cae)
                        .await;
                    return Ok(grant.token);
                }
                Err(e) if refused(&e) => {
                    tracing::debug!(error = %e, "the refresh token was refused; signing in again");
                    self.account.forget_refresh_token();
                    if let Some(why) = self.cannot_sign_in {
                        return Err(Error::with_error(ErrorKind::Credential, e, why));
                    }
                }
                Err(e) => return Err(e),
            }
        } else if let Some(why) = self
            .cannot_sign_in
            .filter(|_| self.account.record().is_some())
        {
            return Err(credential_error(why));
        }
        if !self.account.automatic {
            return Err(credential_error(
                "interactive authentication is required to get a token, and this credential has \
                 disable_automatic_authentication set: call authenticate() first",
            ));
        }
        let (tenant, cae) = (request.tenant, request.cae);
        let grant = interactive(request).await?;
        self.account.remember(&grant, tenant, cae).await;
        Ok(grant.token)
    }

    /// Signs the user in now, whatever is cached, and returns the account.
    pub(crate) async fn authenticate<I, Fut>(
        self,
        scopes: &'c [&'c str],
        options: &'c TokenRequestOptions<'c>,
        interactive: I,
    ) -> azure_core::Result<AuthenticationRecord>
    where
        I: FnOnce(FetchRequest<'c>) -> Fut,
        Fut: Future<Output = azure_core::Result<UserGrant>>,
    {
        validate_scopes(scopes)?;
        let _one_at_a_time = self.account.sign_in.lock().await;
        let request = FetchRequest {
            tenant: &self.core.tenant_id,
            claims: None,
            cae: false,
            scopes,
            context: &options.method_options.context,
        };
        let grant = interactive(request).await?;
        self.account
            .remember(&grant, &self.core.tenant_id, false)
            .await;
        grant.record.ok_or_else(|| {
            credential_error(
                "the token endpoint's answer named no account (no client_info or id_token): \
                 nothing to record",
            )
        })
    }
}

/// What every interactive user credential has over its `core`, `account` and `flow`: the
/// account it signed in, `authenticate()`, and the `fetch` the token cache calls (refresh
/// token first, then the flow). `$errors` documents `authenticate`'s failures.
macro_rules! interactive_user_credential {
    ($ty:ident, $errors:literal) => {
        impl $ty {
            /// The account signed in so far (by `get_token`, [`authenticate`](Self::authenticate)
            /// or the `authentication_record` option), if any.
            pub fn authentication_record(&self) -> Option<$crate::AuthenticationRecord> {
                self.account.record()
            }

            /// Signs the user in now (always asking) and returns the account, for a later
            /// credential's `authentication_record`.
            ///
            /// # Errors
            #[doc = $errors]
            pub async fn authenticate(
                &self,
                scopes: &[&str],
                options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
            ) -> azure_core::Result<$crate::AuthenticationRecord> {
                let options = options.unwrap_or_default();
                self.sign_in()
                    .authenticate(scopes, &options, |r| async move { self.flow(&r).await })
                    .await
                    .map_err(|e| {
                        $crate::errors::authentication_error(LABEL.name, LABEL.fragment, e)
                    })
            }

            fn sign_in(&self) -> $crate::user::SignIn<'_> {
                $crate::user::SignIn {
                    core: &self.core,
                    account: &self.account,
                    client_auth: &[],
                    cannot_sign_in: None,
                }
            }

            async fn fetch(
                &self,
                request: $crate::token::FetchRequest<'_>,
            ) -> azure_core::Result<$crate::token::FetchedToken> {
                self.sign_in()
                    .acquire(request, |r| async move { self.flow(&r).await })
                    .await
            }
        }
    };
}
pub(crate) use interactive_user_credential;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_scope_adds_the_openid_scopes_once() {
        assert_eq!(
            user_scope(&["https://management.azure.com/.default", "openid"]),
            "https://management.azure.com/.default openid offline_access profile"
        );
    }
}
