//! Microsoft Entra Workload ID in Azure Pipelines: asks the pipeline's OIDC endpoint for a token
//! for a service connection and exchanges it for an Entra token.
//!
//! | Input | Required | Source |
//! |---|---|---|
//! | tenant id, client id | yes | arguments (`AZURESUBSCRIPTION_TENANT_ID`, `AZURESUBSCRIPTION_CLIENT_ID` in an `AzureCLI@2` task) |
//! | service connection id | yes | argument (`AZURESUBSCRIPTION_SERVICE_CONNECTION_ID`) |
//! | system access token | yes | argument (`$(System.AccessToken)`, exposed as `SYSTEM_ACCESSTOKEN`) |
//! | `SYSTEM_OIDCREQUESTURI` | yes | environment, set by Azure Pipelines |
//! | `AZURE_AUTHORITY_HOST` | no | environment |
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::AzurePipelinesCredential;
//!
//! let credential = AzurePipelinesCredential::new(
//!     "11111111-1111-1111-1111-111111111111".into(),
//!     "55555555-5555-5555-5555-555555555555".into(),
//!     "66666666-6666-6666-6666-666666666666",
//!     std::env::var("SYSTEM_ACCESSTOKEN").unwrap_or_default(),
//!     None,
//! )?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::credentials::Secret;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::{ClientMethodOptions, Context, Method, Pipeline, Request, Url};
use serde::Deserialize;

use crate::client_assertion_credential::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
};
use crate::confidential::Label;
use crate::entra::{new_pipeline, send};
use crate::errors::{credential_error, require_non_empty, validate_tenant_id};

/// `SYSTEM_OIDCREQUESTURI`.
pub(crate) const SYSTEM_OIDCREQUESTURI: &str = "SYSTEM_OIDCREQUESTURI";
const OIDC_API_VERSION: &str = "7.1";

const LABEL: Label = Label {
    name: "AzurePipelinesCredential",
    fragment: Some("apc"),
};

/// Options for constructing a new [`AzurePipelinesCredential`].
#[derive(Debug, Clone, Default)]
pub struct AzurePipelinesCredentialOptions {
    /// Options of the underlying client-assertion credential (HTTP options, `os`).
    pub credential_options: ClientAssertionCredentialOptions,
}

/// Fetches the service connection's OIDC token from the pipeline.
pub(crate) struct OidcToken {
    pipeline: Pipeline,
    url: Url,
    system_access_token: Secret,
}

impl std::fmt::Debug for OidcToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcToken")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OidcResponse {
    oidc_token: String,
}

/// Upstream's error text: the status plus the diagnostic headers Azure DevOps support asks for.
fn oidc_error(response: azure_core::http::RawResponse) -> Error {
    let status = response.status();
    let header = |name: &'static str| {
        response
            .headers()
            .get_optional_str(&azure_core::http::headers::HeaderName::from_static(name))
            .map(str::to_string)
    };
    let mut fields = Vec::new();
    for name in ["x-msedge-ref", "x-vss-e2eid"] {
        if let Some(value) = header(name) {
            fields.push(format!("{name}: {value:?}"));
        }
    }
    let headers = if fields.is_empty() {
        "Headers".to_string()
    } else {
        format!("Headers {{ {} }}", fields.join(", "))
    };
    let hint = if u16::from(status) == 302 {
        " The endpoint redirected to sign-in: the system access token was not accepted."
    } else {
        ""
    };
    // Upstream's text, then what Azure DevOps said (e.g. "TF400813: ..."), which upstream drops.
    let said = serde_json::from_slice::<serde_json::Value>(response.body().as_ref())
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .map(|m| format!(" Azure DevOps says: {m}"))
        .unwrap_or_default();
    let message = format!(
        "{status} response from the OIDC endpoint.{hint} Check service connection ID and pipeline configuration. {headers}{said}"
    );
    Error::with_message(
        ErrorKind::HttpResponse {
            status,
            error_code: status.canonical_reason().to_string().into(),
            raw_response: Some(Box::new(response)),
        },
        message,
    )
}

impl OidcToken {
    async fn fetch(&self, context: &Context<'_>) -> azure_core::Result<String> {
        let mut request = Request::new(self.url.clone(), Method::Post);
        request.insert_header(
            "authorization",
            format!("Bearer {}", self.system_access_token.secret()),
        );
        request.insert_header("x-tfs-fedauthredirect", "Suppress");
        request.insert_header("content-length", "0");
        let response = send(&self.pipeline, context, &mut request).await?;
        if u16::from(response.status()) != 200 {
            return Err(oidc_error(response));
        }
        let parsed: OidcResponse =
            serde_json::from_slice(response.body().as_ref()).map_err(|e| {
                Error::with_error(ErrorKind::DataConversion, e.to_string(), e.to_string())
            })?;
        Ok(parsed.oidc_token)
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl ClientAssertion for OidcToken {
    async fn secret(&self, options: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let options = options.unwrap_or_default();
        self.fetch(&options.context).await
    }
}

/// Enables authentication to Entra ID from Azure Pipelines.
#[derive(Debug)]
pub struct AzurePipelinesCredential(ClientAssertionCredential<OidcToken>);

impl AzurePipelinesCredential {
    /// Creates a credential for a service connection.
    ///
    /// # Errors
    /// An invalid tenant id; an empty client id, service connection id or system access token;
    /// `SYSTEM_OIDCREQUESTURI` missing or not a URL; an authority that is not https.
    pub fn new<T: Into<Secret>>(
        tenant_id: String,
        client_id: String,
        service_connection_id: &str,
        system_access_token: T,
        options: Option<AzurePipelinesCredentialOptions>,
    ) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default().credential_options;
        let system_access_token = system_access_token.into();
        validate_tenant_id(&tenant_id)?;
        require_non_empty(&client_id, "client ID")?;
        require_non_empty(service_connection_id, "service connection ID")?;
        require_non_empty(system_access_token.secret(), "system access token")?;
        let uri = options.os.var(SYSTEM_OIDCREQUESTURI).ok_or_else(|| {
            credential_error(
                "no value for environment variable SYSTEM_OIDCREQUESTURI. This should be set by Azure Pipelines",
            )
        })?;
        let mut url = Url::parse(&uri).map_err(|e| {
            Error::with_error(
                ErrorKind::Credential,
                e,
                "invalid URL for environment variable SYSTEM_OIDCREQUESTURI",
            )
        })?;
        url.query_pairs_mut()
            .append_pair("api-version", OIDC_API_VERSION)
            .append_pair("serviceConnectionId", service_connection_id);
        let oidc = OidcToken {
            pipeline: new_pipeline(options.client_options.clone()),
            url,
            system_access_token,
        };
        ClientAssertionCredential::with_label(LABEL, tenant_id, client_id, oidc, Some(options))
            .map(|c| Arc::new(Self(c)))
    }
}

crate::cached::cached_token_credential!(wraps AzurePipelinesCredential);
