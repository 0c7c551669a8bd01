//! IMDS retry policy, and the loop that applies it around a request.

use std::future::Future;

use azure_core::http::RawResponse;

use crate::os::Os;

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
    pub(super) fn backoff(&self, retry: u32) -> time::Duration {
        let factor = 2i32.saturating_pow(retry.saturating_sub(1).min(16));
        (self.initial_delay * factor).min(self.max_delay)
    }
}

impl ImdsRetryOptions {
    /// The wait before retry number `retry` after `status`, or `None` when the policy gives up.
    pub(super) fn delay(
        &self,
        status: u16,
        retry: u32,
        retry_after: Option<time::Duration>,
        elapsed: time::Duration,
    ) -> Option<time::Duration> {
        if !matches!(status, 404 | 410 | 429 | 500..=599) {
            return None;
        }
        let backoff = self.backoff(retry);
        let delay = retry_after.map_or(backoff, |r| r.max(backoff));
        let allowed = if status == 410 {
            elapsed + delay <= self.gone_window
        } else {
            retry <= self.max_retries && elapsed + delay <= self.max_elapsed
        };
        allowed.then_some(delay)
    }
}

/// Runs `attempt` until it succeeds or `options` give up on its status; returns the last
/// response and how many retries it took. Transport errors end the loop at once.
pub(super) async fn run<F, Fut>(
    options: &ImdsRetryOptions,
    os: &Os,
    mut attempt: F,
) -> azure_core::Result<(RawResponse, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = azure_core::Result<RawResponse>>,
{
    let started = os.now();
    let mut retries = 0u32;
    loop {
        let response = attempt().await?;
        let status = u16::from(response.status());
        if (200..300).contains(&status) {
            return Ok((response, retries));
        }
        let elapsed = os.now() - started;
        let Some(delay) = options.delay(status, retries + 1, retry_after(&response), elapsed)
        else {
            return Ok((response, retries));
        };
        retries += 1;
        let delay_ms = delay.whole_milliseconds() as i64;
        tracing::debug!(status, retry = retries, delay_ms, "retrying IMDS");
        os.sleep.sleep(delay).await;
    }
}

/// A `Retry-After` header in seconds.
fn retry_after(response: &RawResponse) -> Option<time::Duration> {
    let name = azure_core::http::headers::HeaderName::from_static("retry-after");
    response
        .headers()
        .get_optional_str(&name)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(time::Duration::seconds)
}
