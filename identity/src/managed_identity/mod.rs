//! Authenticates the managed identity of the Azure resource the code runs on.
//!
//! The source is chosen in the constructor from environment variables, in the documented order:
//!
//! | Variables | Source | User-assigned ids |
//! |---|---|---|
//! | `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` + `IDENTITY_SERVER_THUMBPRINT` | Service Fabric (HTTPS; the server certificate is pinned to the thumbprint) | none (the application's identity is configured in the cluster) |
//! | `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` | App Service, Functions, Container Apps | client id, object id, resource id |
//! | `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT` | Azure Arc (challenge file in `/var/opt/azcmagent/tokens`) | none |
//! | `MSI_ENDPOINT` + `MSI_SECRET` | Azure ML (`DEFAULT_IDENTITY_CLIENT_ID` when no id is given) | client id |
//! | `MSI_ENDPOINT` | Cloud Shell (the signed-in user's token) | none |
//! | none of the above | IMDS (VMs, scale sets, AKS nodes); `AZURE_POD_IDENTITY_AUTHORITY_HOST` overrides the address | client id, object id, resource id |
//!
//! Beyond upstream (which supports IMDS, App Service and, in its beta, system-assigned Arc):
//! every source above; the IMDS address can be overridden, so it is testable without a proxy;
//! App Service accepts resource ids; `expires_on` is accepted as a string or a number, with an
//! `expires_in` fallback; IMDS retries follow Azure's guidance and are configurable
//! ([`ImdsRetryOptions`]).
//!
//! To emulate a host, start `entra-emulator` and apply the ready file's profile of the same
//! name: `imds`, `imds_user_assigned`, `app_service`, `azure_arc`, `service_fabric`,
//! `cloud_shell`, `azure_ml`.
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

mod app_service;
mod arc;
mod azure_ml;
mod cloud_shell;
#[cfg(test)]
mod fuzz;
mod imds;
mod request;
mod retry;
mod service_fabric;
mod source;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use azure_core::http::{ClientOptions, Context, Pipeline, RawResponse};

pub use retry::ImdsRetryOptions;
use source::Source;

use crate::cache::{CacheKey, TokenCache};
use crate::entra::{new_pipeline, parse_token_response, send};
use crate::errors::{authentication_error, credential_error, validate_scopes};
use crate::os::Os;
use crate::token::FetchedToken;

const NAME: &str = "ManagedIdentityCredential";
const FRAGMENT: &str = "managed-id";

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
    /// The only directory an Azure Arc challenge file may be in (default
    /// `/var/opt/azcmagent/tokens`, on Windows `%ProgramData%\AzureConnectedMachineAgent\Tokens`).
    /// (Addition beyond upstream, for testing.)
    pub arc_key_directory: Option<PathBuf>,
    /// A shared (distributed) cache under the in-memory one, for services with many replicas
    /// (see [`crate::shared_cache`]). (Addition beyond upstream.)
    pub shared_token_cache: Option<crate::SharedTokenCache>,
    /// Environment, files, clock and sleep. (Addition beyond upstream; defaults to the real
    /// ones.)
    pub os: Os,
}

/// Authenticates a managed identity from Azure App Service or an Azure Virtual Machine (and,
/// here, every other Azure host that offers one).
#[derive(Debug)]
pub struct ManagedIdentityCredential {
    source: Source,
    id: Option<UserAssignedId>,
    pipeline: Pipeline,
    cache: TokenCache,
    os: Os,
    retry: ImdsRetryOptions,
}

impl ManagedIdentityCredential {
    /// Creates a credential for the environment's managed-identity source.
    ///
    /// # Errors
    /// An endpoint that is not a URL, a Service Fabric thumbprint that is not 40 hex digits, or
    /// a user-assigned id the source cannot use.
    pub fn new(options: Option<ManagedIdentityCredentialOptions>) -> azure_core::Result<Arc<Self>> {
        let options = options.unwrap_or_default();
        let source = Source::detect(&options)?;
        source.check_user_assigned(options.user_assigned_id.as_ref())?;
        tracing::info!(
            credential = NAME,
            source = source.name(),
            user_assigned_id = ?options.user_assigned_id,
            "managed identity source selected"
        );
        let mut client_options = options.client_options;
        if matches!(source, Source::Imds(_)) {
            // IMDS retries are this credential's own (see ImdsRetryOptions).
            client_options.retry = azure_core::http::RetryOptions::none();
        }
        if let Source::ServiceFabric(service_fabric::ServiceFabric { thumbprint, .. }) = &source
            && client_options.transport.is_none()
        {
            client_options.transport = Some(tls::pinned_transport(thumbprint)?);
            // A certificate that does not match the pin fails as a connection error, which the
            // default policy would retry for a minute; a wrong pin is not transient.
            client_options.retry = azure_core::http::RetryOptions::exponential(
                azure_core::http::ExponentialRetryOptions {
                    max_retries: 2,
                    max_total_elapsed: time::Duration::seconds(5),
                    ..Default::default()
                },
            );
        }
        let shared = options.shared_token_cache.map(|cache| {
            let identity = format!(
                "{NAME}\u{1}{}\u{1}{:?}",
                source.name(),
                options.user_assigned_id
            );
            crate::shared_cache::SharedLevel::new(cache, identity)
        });
        Ok(Arc::new(Self {
            source,
            id: options.user_assigned_id,
            pipeline: new_pipeline(client_options),
            cache: TokenCache::default().with_shared(shared),
            os: options.os,
            retry: options.imds_retry,
        }))
    }

    /// Whether the source is IMDS, and the user-assigned id in use.
    pub(crate) fn is_imds(&self) -> bool {
        matches!(self.source, Source::Imds(_))
    }

    /// Whether a user-assigned identity was asked for.
    pub(crate) fn is_user_assigned(&self) -> bool {
        self.id.is_some()
    }

    /// Probes IMDS once (chains only): a GET without `Metadata`, no retries, bounded by
    /// `timeout`. Any HTTP response means an IMDS endpoint is there (it answers 400 at once);
    /// a refused connection or silence means it is not, and a chain should move on.
    pub(crate) async fn probe_imds(&self, timeout: time::Duration) -> bool {
        use futures::FutureExt;
        let Source::Imds(imds::Imds { endpoint }) = &self.source else {
            return true;
        };
        let mut request =
            azure_core::http::Request::new(endpoint.clone(), azure_core::http::Method::Get);
        let context = Context::new();
        let send = send(&self.pipeline, &context, &mut request).fuse();
        let sleep = self.os.sleep.sleep(timeout).fuse();
        futures::pin_mut!(send, sleep);
        futures::select! {
            response = send => response.is_ok_and(|r| !is_docker_unreachable(&r)),
            () = sleep => false,
        }
    }

    /// A token from the host; `cae` declares the client capability `cp1` (`xms_cc`).
    async fn fetch(
        &self,
        context: &Context<'_>,
        resource: &str,
        cae: bool,
    ) -> azure_core::Result<FetchedToken> {
        let (response, retries) = match &self.source {
            Source::Imds(_) => {
                let attempt = || self.exchange(context, resource, None, cae);
                retry::run(&self.retry, &self.os, attempt).await?
            }
            Source::Arc(arc) => (self.answer_arc(context, resource, arc, cae).await?, 0),
            _ => (self.exchange(context, resource, None, cae).await?, 0),
        };
        let status = u16::from(response.status());
        if (200..300).contains(&status) {
            return parse_token_response(response.body().as_ref(), self.os.now());
        }
        Err(failure(&self.source, response, status, retries))
    }

    /// Azure Arc: the first request is answered with a challenge; the second carries its
    /// answer.
    async fn answer_arc(
        &self,
        context: &Context<'_>,
        resource: &str,
        arc: &arc::Arc,
        cae: bool,
    ) -> azure_core::Result<RawResponse> {
        let challenge = self.exchange(context, resource, None, cae).await?;
        if challenge.status().is_success() {
            return Ok(challenge);
        }
        let authorization = arc::answer_challenge(&challenge, &arc.key_directory, &self.os)?;
        self.exchange(context, resource, Some(&authorization), cae)
            .await
    }

    /// One request and its response. Nothing listening at IMDS, or Docker Desktop's
    /// "unreachable" answer, means there is no managed identity here: unavailable, so a chain
    /// moves on (as the Python and JavaScript libraries treat it).
    async fn exchange(
        &self,
        context: &Context<'_>,
        resource: &str,
        authorization: Option<&str>,
        cae: bool,
    ) -> azure_core::Result<RawResponse> {
        let mut request = self
            .source
            .request(resource, self.id.as_ref(), authorization);
        if cae {
            request
                .url_mut()
                .query_pairs_mut()
                .append_pair("xms_cc", "cp1");
        }
        let response = match send(&self.pipeline, context, &mut request).await {
            Ok(response) => response,
            Err(e)
                if matches!(self.source, Source::Imds(_))
                    && matches!(e.kind(), ErrorKind::Io | ErrorKind::Connection) =>
            {
                return Err(crate::errors::unavailable(format!(
                    "{NAME} authentication unavailable. No response from the IMDS endpoint; this does not look like an Azure host with a managed identity: {}",
                    crate::errors::chain_text(&e)
                )));
            }
            Err(e) => return Err(e),
        };
        if is_docker_unreachable(&response) {
            return Err(crate::errors::unavailable(format!(
                "the {} managed identity endpoint is unreachable from this network (403: {}). No managed identity is available here.",
                self.source.name(),
                String::from_utf8_lossy(response.body().as_ref()).trim()
            )));
        }
        Ok(response)
    }
}

/// Docker Desktop answers requests for the IMDS address with a 403 saying the network is
/// unreachable: there is no IMDS, and a chain should move on.
fn is_docker_unreachable(response: &RawResponse) -> bool {
    u16::from(response.status()) == 403
        && String::from_utf8_lossy(response.body().as_ref()).contains("unreachable")
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
    let message = if status == 400 && matches!(source, Source::Imds(_)) {
        format!("The requested identity has not been assigned to this resource. {body}")
    } else {
        format!(
            "{status} response from the {} managed identity endpoint{attempts}: {body}",
            source.name()
        )
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

impl ManagedIdentityCredential {
    /// The one scope managed identity takes, as a resource.
    fn resource<'s>(scopes: &[&'s str]) -> azure_core::Result<&'s str> {
        validate_scopes(scopes)?;
        let [scope] = scopes else {
            return Err(credential_error(format!(
                "{NAME} requires exactly one scope; got {}",
                scopes.len()
            )));
        };
        Ok(scope.strip_suffix("/.default").unwrap_or(scope))
    }

    async fn token(
        &self,
        scopes: &[&str],
        options: &TokenRequestOptions<'_>,
    ) -> azure_core::Result<AccessToken> {
        let resource = Self::resource(scopes)?;
        let context = &options.method_options.context;
        let extras = context.value::<crate::TokenRequestExtras>();
        let cae = extras.is_some_and(|e| e.enable_cae);
        let key = CacheKey {
            scopes,
            tenant: None,
            claims: crate::cae::cache_claims(cae),
        };
        let clock = self.os.clock.as_ref();
        let fetch = || self.fetch(context, resource, cae);
        // A claims challenge means the cached token was refused: fetch a new one.
        let result = if extras.is_some_and(|e| e.claims.is_some()) {
            Box::pin(self.cache.fetch_fresh(NAME, key, clock, fetch)).await
        } else {
            Box::pin(self.cache.get_or_fetch(NAME, key, clock, fetch)).await
        };
        result.map_err(|e| authentication_error(NAME, Some(FRAGMENT), e))
    }
}

impl crate::cached::CachedCredential for ManagedIdentityCredential {
    fn cached(
        &self,
        scopes: &[&str],
        options: Option<&TokenRequestOptions<'_>>,
    ) -> Option<AccessToken> {
        if scopes.len() != 1 {
            return None;
        }
        let extras = options.and_then(|o| {
            o.method_options
                .context
                .value::<crate::TokenRequestExtras>()
        });
        if extras.is_some_and(|e| e.claims.is_some()) {
            return None;
        }
        let key = CacheKey {
            scopes,
            tenant: None,
            claims: crate::cae::cache_claims(extras.is_some_and(|e| e.enable_cae)),
        };
        self.cache.try_hit(&key, self.os.clock.as_ref())
    }

    fn fetch_token<'a>(
        &'a self,
        scopes: &'a [&'a str],
        options: &'a TokenRequestOptions<'a>,
    ) -> impl std::future::Future<Output = azure_core::Result<AccessToken>> + Send + 'a {
        self.token(scopes, options)
    }
}

crate::cached::cached_token_credential!(ManagedIdentityCredential);
