//! Bounds on every HTTP exchange a credential makes: how long one try may take and how large a
//! response may be.

use std::sync::Arc;

use async_trait::async_trait;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{AsyncRawResponse, Context, Request};
use futures::{FutureExt, StreamExt};

/// Bounds one try of an HTTP exchange with an identity endpoint: the whole response, headers
/// and body, must arrive within [`try_timeout`](Self::try_timeout) and be no larger than
/// [`max_response_bytes`](Self::max_response_bytes).
///
/// Every credential's pipeline carries one with the default bounds (30 s, 1 MiB) as a per-try
/// policy, so a silent endpoint cannot hang `get_token` and a runaway body cannot exhaust
/// memory; the retry policy then decides whether to try again (a timeout is retried like any
/// transport error; an oversized body is not). To tighten the bounds, add another to
/// [`ClientOptions::per_try_policies`](azure_core::http::ClientOptions): the tighter of the two
/// wins. (Addition beyond upstream, whose requests are bounded only by the transport.)
///
/// ```
/// use std::sync::Arc;
/// use azure_identity::{ClientSecretCredentialOptions, ExchangeLimits};
///
/// let mut options = ClientSecretCredentialOptions::default();
/// options.client_options.per_try_policies.push(Arc::new(ExchangeLimits {
///     try_timeout: time::Duration::seconds(5),
///     ..ExchangeLimits::default()
/// }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeLimits {
    /// The longest one try may take, from sending the request to the last byte of the body.
    pub try_timeout: time::Duration,
    /// The largest response body accepted.
    pub max_response_bytes: usize,
}

impl Default for ExchangeLimits {
    fn default() -> Self {
        Self {
            try_timeout: time::Duration::seconds(30),
            max_response_bytes: 1024 * 1024,
        }
    }
}

impl ExchangeLimits {
    async fn exchange(
        &self,
        ctx: &Context<'_>,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let response = next[0].send(ctx, request, &next[1..]).await?;
        let (status, headers, mut body) = response.deconstruct();
        let too_large = || {
            Error::with_message(
                ErrorKind::DataConversion,
                format!(
                    "the response from {} is larger than {} bytes; this is not an identity endpoint's answer",
                    request.url().origin().ascii_serialization(),
                    self.max_response_bytes
                ),
            )
        };
        let declared = headers
            .get_optional_str(&azure_core::http::headers::CONTENT_LENGTH)
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_response_bytes as u64) {
            return Err(too_large());
        }
        let mut collected = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if collected.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large());
            }
            collected.extend_from_slice(&chunk);
        }
        Ok(AsyncRawResponse::from_bytes(status, headers, collected))
    }
}

#[async_trait]
impl Policy for ExchangeLimits {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let url = request.url().clone();
        let timeout = self.try_timeout;
        let exchange = self.exchange(ctx, request, next).fuse();
        let sleep = azure_core::async_runtime::get_async_runtime()
            .sleep(timeout)
            .fuse();
        futures::pin_mut!(exchange, sleep);
        futures::select! {
            result = exchange => result,
            () = sleep => Err(Error::with_message(
                ErrorKind::Io,
                format!(
                    "no complete response from {}{} within {} ms; the endpoint may be down or unreachable",
                    url.origin().ascii_serialization(),
                    url.path(),
                    timeout.whole_milliseconds()
                ),
            )),
        }
    }
}
