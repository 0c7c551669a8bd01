//! Microsoft Entra Workload ID on Kubernetes: exchanges the projected service-account token that
//! the workload identity webhook mounts into the pod for an Entra token.
//!
//! | Variable | Required | Option that overrides it |
//! |---|---|---|
//! | `AZURE_TENANT_ID` | yes | `tenant_id` |
//! | `AZURE_CLIENT_ID` | yes | `client_id` |
//! | `AZURE_FEDERATED_TOKEN_FILE` | yes | `token_file_path` |
//! | `AZURE_AUTHORITY_HOST` | no | `credential_options.client_options.cloud` |
//!
//! Differences from upstream: the token file is read when a token is needed (not in the
//! constructor, so a pod may start before the file appears), its contents are trimmed (a
//! trailing newline is not sent), and it is re-read once it is older than
//! five minutes because Kubernetes rotates it.
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::WorkloadIdentityCredential;
//!
//! let credential = WorkloadIdentityCredential::new(None)?; // configured by the webhook's variables
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use azure_core::error::{Error, ErrorKind};
use azure_core::http::ClientMethodOptions;
use time::{Duration, OffsetDateTime};

use crate::client_assertion_credential::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
};
use crate::confidential::Label;
use crate::errors::unavailable;
use crate::os::Os;

/// `AZURE_TENANT_ID`.
pub(crate) const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// `AZURE_CLIENT_ID`.
pub(crate) const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// `AZURE_FEDERATED_TOKEN_FILE`.
pub(crate) const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";

/// How long a read of the token file is reused. Kubernetes rotates projected tokens at 80 % of
/// their lifetime (at least 48 minutes for the default hour); five minutes picks up a rotation
/// long before the old token expires while reading the file at most once per five minutes.
pub(crate) const TOKEN_FILE_MAX_AGE: Duration = Duration::minutes(5);

const LABEL: Label = Label {
    name: "WorkloadIdentityCredential",
    fragment: Some("workload"),
};

/// Options for constructing a new [`WorkloadIdentityCredential`].
#[derive(Debug, Clone, Default)]
pub struct WorkloadIdentityCredentialOptions {
    /// Options of the underlying client-assertion credential (HTTP options, `os`).
    pub credential_options: ClientAssertionCredentialOptions,
    /// The client id; overrides `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// The tenant id; overrides `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// The token file; overrides `AZURE_FEDERATED_TOKEN_FILE`.
    pub token_file_path: Option<PathBuf>,
}

/// Reads the federated token from a file, re-reading it once the last read is old.
#[derive(Debug)]
pub(crate) struct TokenFile {
    path: PathBuf,
    os: Os,
    last: Mutex<Option<(String, OffsetDateTime)>>,
}

impl TokenFile {
    fn read(&self) -> azure_core::Result<String> {
        let now = self.os.now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, read_at)) = last.as_ref()
            && now - *read_at < TOKEN_FILE_MAX_AGE
        {
            return Ok(token.clone());
        }
        let bytes = self.os.fs.read(&self.path).map_err(|e| {
            Error::with_error(
                ErrorKind::Io,
                e,
                format!(
                    "failed to read federated token from file {}",
                    self.path.display()
                ),
            )
        })?;
        let token = String::from_utf8(bytes)
            .map_err(|e| {
                Error::with_error(
                    ErrorKind::DataConversion,
                    e,
                    format!(
                        "the federated token file {} is not UTF-8",
                        self.path.display()
                    ),
                )
            })?
            .trim()
            .to_string();
        if token.is_empty() {
            return Err(Error::with_message(
                ErrorKind::Credential,
                format!("the federated token file {} is empty", self.path.display()),
            ));
        }
        *last = Some((token.clone(), now));
        Ok(token)
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ClientAssertion for TokenFile {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.read()
    }
}

/// `WorkloadIdentityCredential` supports Azure workload identity on Kubernetes.
#[derive(Debug)]
pub struct WorkloadIdentityCredential(ClientAssertionCredential<TokenFile>);

impl WorkloadIdentityCredential {
    /// Creates a credential from the options and the webhook's environment variables.
    ///
    /// # Errors
    /// A missing tenant id, client id or token file (the error says which and how to set it; the
    /// credential is *unavailable*, see [`crate::is_unavailable`]), an invalid tenant id, or an
    /// authority that is not https.
    pub fn new(
        options: Option<WorkloadIdentityCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let os = options.credential_options.os.clone();
        let tenant_id = options.tenant_id.or_else(|| os.var(AZURE_TENANT_ID)).ok_or_else(|| {
            unavailable("no tenant ID specified. Check pod configuration or set tenant_id in the options")
        })?;
        let path = options
            .token_file_path
            .or_else(|| os.var(AZURE_FEDERATED_TOKEN_FILE).map(PathBuf::from))
            .ok_or_else(|| {
                unavailable("no token file specified. Check pod configuration or set token_file_path in the options")
            })?;
        let client_id = options.client_id.or_else(|| os.var(AZURE_CLIENT_ID)).ok_or_else(|| {
            unavailable("no client id specified. Check pod configuration or set client_id in the options")
        })?;
        let file = TokenFile {
            path,
            os,
            last: Mutex::new(None),
        };
        ClientAssertionCredential::with_label(
            LABEL,
            tenant_id,
            client_id,
            file,
            Some(options.credential_options),
        )
        .map(|c| Arc::new(Self(c)))
    }
}

crate::cached::cached_token_credential!(wraps WorkloadIdentityCredential);
