//! Authenticates a service principal configured through environment variables.
//!
//! | Variable | Required | |
//! |---|---|---|
//! | `AZURE_TENANT_ID` | yes | the tenant |
//! | `AZURE_CLIENT_ID` | yes | the application |
//! | `AZURE_CLIENT_SECRET` | one of these two | a client secret (wins when both are set) |
//! | `AZURE_CLIENT_CERTIFICATE_PATH` | | a PEM or PKCS#12 certificate with its key |
//! | `AZURE_CLIENT_CERTIFICATE_PASSWORD` | no | the PKCS#12 password |
//! | `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` | no | `1`/`true` sends `x5c` |
//! | `AZURE_AUTHORITY_HOST` | no | the authority |
//!
//! When none of this is configured the credential is *unavailable* (a chain moves on) and says
//! which variables are missing. (Upstream Rust has no EnvironmentCredential; the other Azure
//! SDKs do.)
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::EnvironmentCredential;
//!
//! let credential = EnvironmentCredential::new(None)?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::ClientOptions;

use crate::errors::unavailable;
use crate::os::Os;

/// Options for constructing an [`EnvironmentCredential`].
#[derive(Debug, Clone, Default)]
pub struct EnvironmentCredentialOptions {
    /// HTTP options: transport, retry, and `cloud` (the authority host).
    pub client_options: ClientOptions,
    /// Environment, files, clock and sleep.
    pub os: Os,
}

/// Authenticates a service principal configured through `AZURE_*` environment variables.
#[derive(Debug)]
pub struct EnvironmentCredential {
    inner: Result<Arc<dyn TokenCredential>, String>,
}

impl EnvironmentCredential {
    /// Reads the environment. Not configured is not an error here: `get_token` then reports the
    /// credential unavailable, naming the missing variables.
    ///
    /// # Errors
    /// A configuration that is present but invalid (bad tenant id, unreadable or unusable
    /// certificate, non-https authority).
    pub fn new(options: Option<EnvironmentCredentialOptions>) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let os = options.os.clone();
        let tenant = os.var("AZURE_TENANT_ID");
        let client = os.var("AZURE_CLIENT_ID");
        let secret = os.var("AZURE_CLIENT_SECRET");
        let certificate = os.var("AZURE_CLIENT_CERTIFICATE_PATH");
        let (Some(tenant), Some(client), true) =
            (&tenant, &client, secret.is_some() || certificate.is_some())
        else {
            let has_credential = secret.is_some() || certificate.is_some();
            let missing = not_configured(tenant.is_some(), client.is_some(), has_credential);
            return Ok(Arc::new(Self {
                inner: Err(missing),
            }));
        };
        let inner: Arc<dyn TokenCredential> = match (secret, certificate) {
            (Some(secret), _) => crate::ClientSecretCredential::new(
                tenant,
                client.clone(),
                secret.into(),
                Some(crate::ClientSecretCredentialOptions {
                    client_options: options.client_options,
                    os: options.os,
                    ..Default::default()
                }),
            )?,
            (None, Some(path)) => certificate_credential(tenant, client, &path, options)?,
            (None, None) => unreachable_configuration()?,
        };
        Ok(Arc::new(Self { inner: Ok(inner) }))
    }
}

/// "not configured: set …" naming every missing variable.
fn not_configured(tenant: bool, client: bool, credential: bool) -> String {
    let missing: Vec<&str> = [
        ("AZURE_TENANT_ID", tenant),
        ("AZURE_CLIENT_ID", client),
        (
            "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH",
            credential,
        ),
    ]
    .iter()
    .filter(|(_, set)| !set)
    .map(|(name, _)| *name)
    .collect();
    format!(
        "EnvironmentCredential is not configured: set {}",
        missing.join(", ")
    )
}

fn unreachable_configuration() -> azure_core::Result<Arc<dyn TokenCredential>> {
    Err(crate::errors::credential_error(
        "EnvironmentCredential: no secret or certificate",
    ))
}

#[cfg(feature = "client_certificate")]
fn certificate_credential(
    tenant: &str,
    client: &str,
    path: &str,
    options: EnvironmentCredentialOptions,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    let bytes = options
        .os
        .fs
        .read(std::path::Path::new(path))
        .map_err(|e| {
            azure_core::Error::with_error(
                azure_core::error::ErrorKind::Credential,
                e,
                format!("EnvironmentCredential: cannot read AZURE_CLIENT_CERTIFICATE_PATH {path}"),
            )
        })?;
    let password = options
        .os
        .var("AZURE_CLIENT_CERTIFICATE_PASSWORD")
        .map(Into::into);
    Ok(crate::ClientCertificateCredential::new(
        tenant.to_string(),
        client.to_string(),
        bytes.into(),
        Some(crate::ClientCertificateCredentialOptions {
            client_options: options.client_options,
            password,
            os: options.os,
            ..Default::default()
        }),
    )?)
}

#[cfg(not(feature = "client_certificate"))]
fn certificate_credential(
    _: &str,
    _: &str,
    _: &str,
    _: EnvironmentCredentialOptions,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    Err(crate::errors::credential_error(
        "EnvironmentCredential: AZURE_CLIENT_CERTIFICATE_PATH needs the `client_certificate` feature of azure_identity",
    ))
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TokenCredential for EnvironmentCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        match &self.inner {
            Ok(inner) => inner.get_token(scopes, options).await,
            Err(missing) => Err(unavailable(missing.clone())),
        }
    }
}
