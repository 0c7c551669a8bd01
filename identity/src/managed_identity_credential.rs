//! Authenticates the managed identity of the Azure resource the code runs on.
//!
//! The source is chosen in the constructor from environment variables, in the documented order:
//!
//! | Variables | Source | Status here |
//! |---|---|---|
//! | `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT` | Service Fabric | not yet supported (error) |
//! | `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` | App Service, Functions, Container Apps | supported, including `mi_res_id` |
//! | `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT` | Azure Arc | not yet supported (error) |
//! | `MSI_ENDPOINT` + `MSI_SECRET` | Azure ML | not yet supported (error) |
//! | `MSI_ENDPOINT` | Cloud Shell | not yet supported (error) |
//! | none of the above | IMDS (VMs, scale sets, AKS nodes) | supported |
//!
//! Beyond upstream: the IMDS address can be overridden with `AZURE_POD_IDENTITY_AUTHORITY_HOST`
//! (as the Python and JS SDKs read it) or [`ManagedIdentityCredentialOptions::imds_endpoint`],
//! so it is testable without a proxy; App Service accepts resource ids; `expires_on` is accepted
//! as a string or a number, with an `expires_in` fallback.
//!
//! ```no_run
//! # async fn demo() -> azure_core::Result<()> {
//! use azure_core::credentials::TokenCredential;
//! use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
//!
//! let credential = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
//!     user_assigned_id: Some(UserAssignedId::ClientId("b1b1b1b1-0000-4000-8000-000000000001".into())),
//!     ..Default::default()
//! }))?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # let _ = token;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::HeaderName;
use azure_core::http::{ClientOptions, Context, Method, Pipeline, RawResponse, Request, Url};

use crate::cache::{CacheKey, TokenCache};
use crate::entra::{FetchedToken, new_pipeline, parse_token_response, send};
use crate::errors::{authentication_error, credential_error, validate_scopes};
use crate::os::Os;

const NAME: &str = "ManagedIdentityCredential";
const FRAGMENT: &str = "managed-id";
const DEFAULT_IMDS: &str = "http://169.254.169.254";
const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
const IMDS_API_VERSION: &str = "2019-08-01";
const APP_SERVICE_API_VERSION: &str = "2019-08-01";

/// Identifies a specific user-assigned identity for [`ManagedIdentityCredential`] to
/// authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserAssignedId {
    /// The client (application) id.
    ClientId(String),
    /// The object (principal) id.
    ObjectId(String),
    /// The ARM resource id.
    ResourceId(String),
}

/// How the IMDS source retries, following Azure's guidance for IMDS: 404 (the endpoint is
/// updating), 429 (throttled, honouring `Retry-After`) and 5xx with exponential back-off, and 410
/// ("available within 70 seconds") until [`gone_window`](Self::gone_window) has passed.
/// Connection failures are not retried: they mean there is no IMDS here, and a chain should
/// move on at once. (Addition beyond upstream, which fixes these values.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsRetryOptions {
    /// Retries after 404, 429 and 5xx.
    pub max_retries: u32,
    /// The first back-off; each later one doubles.
    pub initial_delay: time::Duration,
    /// The longest single back-off.
    pub max_delay: time::Duration,
    /// How long 410 responses are retried.
    pub gone_window: time::Duration,
    /// The longest total time spent retrying.
    pub max_elapsed: time::Duration,
}

impl Default for ImdsRetryOptions {
    fn default() -> Self {
        Self {
            max_retries: 5,
            initial_delay: time::Duration::seconds(1),
            max_delay: time::Duration::seconds(30),
            gone_window: time::Duration::seconds(70),
            max_elapsed: time::Duration::seconds(100),
        }
    }
}

impl ImdsRetryOptions {
    fn backoff(&self, retry: u32) -> time::Duration {
        let factor = 2i32.saturating_pow(retry.saturating_sub(1).min(16));
        (self.initial_delay * factor).min(self.max_delay)
    }
}

/// Options for constructing a new [`ManagedIdentityCredential`].
#[derive(Debug, Clone, Default)]
pub struct ManagedIdentityCredentialOptions {
    /// A user-assigned identity; the system-assigned identity when `None`.
    pub user_assigned_id: Option<UserAssignedId>,
    /// HTTP options: transport and retry.
    pub client_options: ClientOptions,
    /// The IMDS base URL (default `AZURE_POD_IDENTITY_AUTHORITY_HOST`, else
    /// `http://169.254.169.254`). (Addition beyond upstream.)
    pub imds_endpoint: Option<String>,
    /// Retries of the IMDS source. (Addition beyond upstream.)
    pub imds_retry: ImdsRetryOptions,
    /// Environment, files, clock and sleep. (Addition beyond upstream; defaults to the real
    /// ones.)
    pub os: Os,
}

#[derive(Debug)]
enum Source {
    Imds { endpoint: Url },
    AppService { endpoint: Url, header: Secret },
}

/// Authenticates a managed identity from Azure App Service or an Azure Virtual Machine.
#[derive(Debug)]
pub struct ManagedIdentityCredential {
    source: Source,
    id: Option<UserAssignedId>,
    pipeline: Pipeline,
    cache: TokenCache,
    os: Os,
    retry: ImdsRetryOptions,
}

fn parse_url(text: &str, variable: &str) -> azure_core::Result<Url> {
    Url::parse(text).map_err(|e| {
        Error::with_error(
            ErrorKind::Credential,
            e,
            format!("invalid URL in {variable}: {text}"),
        )
    })
}

fn unsupported(what: &str) -> Error {
    credential_error(format!("{what} managed identity isn't supported"))
}

impl ManagedIdentityCredential {
    /// Creates a credential for the environment's managed-identity source.
    ///
    /// # Errors
    /// A source this crate does not support yet, or an endpoint that is not a URL.
    pub fn new(options: Option<ManagedIdentityCredentialOptions>) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let os = options.os.clone();
        let var = |name: &str| os.env.var(name);
        let source = match (var("IDENTITY_ENDPOINT"), var("IDENTITY_HEADER")) {
            (Some(_), Some(_)) if var("IDENTITY_SERVER_THUMBPRINT").is_some() => {
                return Err(unsupported("Service Fabric"));
            }
            (Some(endpoint), Some(header)) => Source::AppService {
                endpoint: parse_url(&endpoint, "IDENTITY_ENDPOINT")?,
                header: Secret::new(header),
            },
            (Some(_), None) if var("IMDS_ENDPOINT").is_some() => {
                return Err(unsupported("Azure Arc"));
            }
            _ if var("MSI_ENDPOINT").is_some() => {
                return Err(unsupported(if var("MSI_SECRET").is_some() {
                    "Azure ML"
                } else {
                    "CloudShell"
                }));
            }
            _ => {
                let base = options
                    .imds_endpoint
                    .clone()
                    .or_else(|| os.var("AZURE_POD_IDENTITY_AUTHORITY_HOST"))
                    .unwrap_or_else(|| DEFAULT_IMDS.to_string());
                let endpoint = format!("{}{IMDS_PATH}", base.trim_end_matches('/'));
                Source::Imds {
                    endpoint: parse_url(&endpoint, "AZURE_POD_IDENTITY_AUTHORITY_HOST")?,
                }
            }
        };
        tracing::info!(credential = NAME, source = source.name(), user_assigned_id = ?options.user_assigned_id, "managed identity source selected");
        let mut client_options = options.client_options;
        if matches!(source, Source::Imds { .. }) {
            // IMDS retries are this credential's own (see ImdsRetryOptions).
            client_options.retry = azure_core::http::RetryOptions::none();
        }
        Ok(Arc::new(Self {
            source,
            id: options.user_assigned_id,
            pipeline: new_pipeline(client_options),
            cache: TokenCache::default(),
            os,
            retry: options.imds_retry,
        }))
    }

    fn request(&self, resource: &str) -> Request {
        let (mut url, header) = match &self.source {
            Source::Imds { endpoint } => (endpoint.clone(), None),
            Source::AppService { endpoint, header } => (endpoint.clone(), Some(header)),
        };
        {
            let mut query = url.query_pairs_mut();
            let api_version = if header.is_some() {
                APP_SERVICE_API_VERSION
            } else {
                IMDS_API_VERSION
            };
            query
                .append_pair("api-version", api_version)
                .append_pair("resource", resource);
            match (&self.id, header.is_some()) {
                (Some(UserAssignedId::ClientId(id)), _) => query.append_pair("client_id", id),
                (Some(UserAssignedId::ObjectId(id)), _) => query.append_pair("object_id", id),
                (Some(UserAssignedId::ResourceId(id)), false) => {
                    query.append_pair("msi_res_id", id)
                }
                (Some(UserAssignedId::ResourceId(id)), true) => query.append_pair("mi_res_id", id),
                (None, _) => &mut query,
            };
        }
        let mut request = Request::new(url, Method::Get);
        request.insert_header("metadata", "true");
        if let Some(header) = header {
            request.insert_header("x-identity-header", header.secret().to_string());
        }
        request
    }

    async fn fetch(
        &self,
        context: &Context<'_>,
        resource: &str,
    ) -> azure_core::Result<FetchedToken> {
        let started = self.os.now();
        let mut retries = 0u32;
        loop {
            let mut request = self.request(resource);
            let response = send(&self.pipeline, context, &mut request).await?;
            let status = u16::from(response.status());
            if (200..300).contains(&status) {
                return parse_token_response(response.body().as_ref(), self.os.now());
            }
            match self.retry_delay(&response, status, retries + 1, started) {
                Some(delay) => {
                    retries += 1;
                    tracing::debug!(
                        credential = NAME,
                        status,
                        retry = retries,
                        delay_ms = delay.whole_milliseconds() as i64,
                        "retrying IMDS"
                    );
                    self.os.sleep.sleep(delay).await;
                }
                None => return Err(failure(&self.source, response, status, retries)),
            }
        }
    }

    /// How long to wait before retry number `retry`, or `None` when the response is final.
    fn retry_delay(
        &self,
        response: &RawResponse,
        status: u16,
        retry: u32,
        started: time::OffsetDateTime,
    ) -> Option<time::Duration> {
        let retryable = matches!(status, 404 | 410 | 429 | 500..=599);
        if !matches!(self.source, Source::Imds { .. }) || !retryable {
            return None;
        }
        let backoff = self.retry.backoff(retry);
        let retry_after = response
            .headers()
            .get_optional_str(&HeaderName::from_static("retry-after"))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(time::Duration::seconds);
        let delay = retry_after.map_or(backoff, |r| r.max(backoff));
        let elapsed = self.os.now() - started;
        let allowed = if status == 410 {
            elapsed + delay <= self.retry.gone_window
        } else {
            retry <= self.retry.max_retries && elapsed + delay <= self.retry.max_elapsed
        };
        allowed.then_some(delay)
    }
}

/// The error for a final non-success response.
fn failure(source: &Source, response: RawResponse, status: u16, retries: u32) -> Error {
    let body = String::from_utf8_lossy(response.body().as_ref())
        .chars()
        .take(500)
        .collect::<String>();
    let attempts = if retries > 0 {
        format!(" (after {retries} retries)")
    } else {
        String::new()
    };
    let message = if status == 400 && matches!(source, Source::Imds { .. }) {
        format!("The requested identity has not been assigned to this resource. {body}")
    } else {
        format!("{status} response from the managed identity endpoint{attempts}: {body}")
    };
    Error::with_message(
        ErrorKind::HttpResponse {
            status: response.status(),
            error_code: None,
            raw_response: Some(Box::new(response)),
        },
        message,
    )
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Self::Imds { .. } => "IMDS",
            Self::AppService { .. } => "App Service",
        }
    }
}

#[cfg_attr(target_arch = "wasm32", async_trait::async_trait(?Send))]
#[cfg_attr(not(target_arch = "wasm32"), async_trait::async_trait)]
impl TokenCredential for ManagedIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        validate_scopes(scopes)?;
        let [scope] = scopes else {
            return Err(credential_error(format!(
                "{NAME} requires exactly one scope; got {}",
                scopes.len()
            )));
        };
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let options = options.unwrap_or_default();
        let context = &options.method_options.context;
        self.cache
            .get_or_fetch(
                NAME,
                CacheKey {
                    scopes,
                    tenant: None,
                    claims: None,
                },
                self.os.clock.as_ref(),
                || self.fetch(context, resource),
            )
            .await
            .map_err(|e| authentication_error(NAME, Some(FRAGMENT), e))
    }
}
