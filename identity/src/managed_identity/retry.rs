//! IMDS retry policy.

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
