//! The fault model as configs, flags and the control plane spell it (serde).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Endpoint, FaultError};

/// Which requests a fault applies to. Every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultMatch {
    /// The endpoint kind; any endpoint when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// The tenant in the request path (token, discovery and JWKS requests), case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The client id (form field, or a managed-identity selector in the query), case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A substring of the requested resource or scope, case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultAction {
    /// Answer with `status`. Without a `body`, the body is an error in the endpoint's host's
    /// own shape (see [`crate::wire`]: Entra's for token/discovery/JWKS, IMDS's for IMDS and
    /// Arc, App Service's for App Service and Azure ML, Service Fabric's, Cloud Shell's, Azure
    /// DevOps'). `retry_after` adds a `Retry-After` header (seconds).
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, verbatim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// Extra headers.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
        /// Seconds for a `Retry-After` header.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// IMDS's 410 Gone: "the instance is being updated; available within 70 seconds".
    Gone,
    /// Docker Desktop's 403 for an unreachable IMDS address (`... connecting to
    /// 169.254.169.254:80: ... unreachable network`).
    Unreachable,
    /// Azure DevOps' 302 to its sign-in page (a rejected pipeline access token). The default
    /// `location` stays on the emulator, so a client that follows it never leaves loopback.
    Redirect {
        /// The `Location` header; a path on the emulator when unset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        location: Option<String>,
    },
    /// Answer normally after `ms` milliseconds.
    Latency {
        /// Added delay in milliseconds.
        ms: u64,
    },
    /// Never answer: hold the connection for `secs` (default one hour), then drop it.
    Hang {
        /// How long to hold the connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secs: Option<u64>,
    },
    /// Drop the connection without a response.
    Reset,
    /// Send the real response's headers (with its full `Content-Length`) and only the first
    /// `keep_bytes` of its body (default: half), then drop the connection.
    Truncate {
        /// Body bytes sent before the connection drops.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep_bytes: Option<usize>,
    },
    /// A 200 whose body is an HTML page, not JSON (a captive portal or proxy).
    NotJson,
    /// The real response with these top-level JSON fields removed (default `access_token`).
    MissingFields {
        /// Field names to remove.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
    },
    /// A 200 JSON body of `bytes` bytes (default 16 MiB).
    Oversized {
        /// The body size.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<usize>,
    },
    /// Answer normally, but issue tokens as if the emulator's clock were `secs` off.
    ClockSkew {
        /// Seconds to add to the clock (negative: in the past).
        secs: i64,
    },
}

impl FaultAction {
    /// A status with the endpoint's error body.
    pub fn status(status: u16) -> Self {
        FaultAction::Status {
            status,
            body: None,
            headers: BTreeMap::new(),
            retry_after: None,
        }
    }

    /// 429 Too Many Requests with `Retry-After: secs`.
    pub fn throttle(retry_after_secs: u64) -> Self {
        FaultAction::Status {
            status: 429,
            body: None,
            headers: BTreeMap::new(),
            retry_after: Some(retry_after_secs),
        }
    }

    /// A short description for the request log.
    pub fn describe(&self) -> String {
        match self {
            FaultAction::Status { status, .. } => format!("status {status}"),
            FaultAction::Gone => "gone (410)".into(),
            FaultAction::Unreachable => "unreachable (403)".into(),
            FaultAction::Redirect { .. } => "redirect (302)".into(),
            FaultAction::Latency { ms } => format!("latency {ms} ms"),
            FaultAction::Hang { secs } => format!("hang {} s", secs.unwrap_or(DEFAULT_HANG_SECS)),
            FaultAction::Reset => "reset".into(),
            FaultAction::Truncate { .. } => "truncate".into(),
            FaultAction::NotJson => "not json".into(),
            FaultAction::MissingFields { .. } => "missing fields".into(),
            FaultAction::Oversized { bytes } => {
                format!(
                    "oversized {} bytes",
                    bytes.unwrap_or(DEFAULT_OVERSIZED_BYTES)
                )
            }
            FaultAction::ClockSkew { secs } => format!("clock skew {secs} s"),
        }
    }
}

/// How long a hang holds the connection unless told otherwise.
pub const DEFAULT_HANG_SECS: u64 = 3600;
/// The size of an oversized body unless told otherwise.
pub const DEFAULT_OVERSIZED_BYTES: usize = 16 * 1024 * 1024;

/// One fault: which requests, what happens, how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A label for the request log (default: the action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which requests.
    #[serde(default, rename = "match")]
    pub matcher: FaultMatch,
    /// What happens.
    pub action: FaultAction,
    /// Fire for the next `times` matching requests, then retire; unlimited when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// Fire for each matching request with this probability (0..=1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Seed of the generator behind `probability` (the same seed gives the same sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Fault {
    /// A fault that does `action` to every request (narrow it with the other methods).
    pub fn new(action: FaultAction) -> Self {
        Self {
            name: None,
            matcher: FaultMatch::default(),
            action,
            times: None,
            probability: None,
            seed: None,
        }
    }

    /// Only requests to `endpoint`.
    pub fn on(mut self, endpoint: Endpoint) -> Self {
        self.matcher.endpoint = Some(endpoint);
        self
    }

    /// Only requests for `tenant`.
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.matcher.tenant = Some(tenant.into());
        self
    }

    /// Only requests from `client_id`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.matcher.client_id = Some(client_id.into());
        self
    }

    /// Only requests whose resource or scope contains `resource`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.matcher.resource = Some(resource.into());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Each matching request with probability `p`, from a generator seeded with `seed`.
    pub fn probability(mut self, p: f64, seed: u64) -> Self {
        self.probability = Some(p);
        self.seed = Some(seed);
        self
    }

    /// A label for the request log.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Checks the values make sense.
    ///
    /// # Errors
    /// [`FaultError::Probability`] or [`FaultError::Status`] for values out of range.
    pub fn validate(&self) -> Result<(), FaultError> {
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(FaultError::Probability(p));
        }
        if let FaultAction::Status { status, .. } = &self.action
            && !(100..=999).contains(status)
        {
            return Err(FaultError::Status(*status));
        }
        Ok(())
    }

    pub(crate) fn label(&self, id: u64) -> String {
        match &self.name {
            Some(name) => format!("#{id} {name}"),
            None => format!("#{id} {}", self.action.describe()),
        }
    }
}

/// A fault in effect and its counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultStatus {
    /// Its id (for removal).
    pub id: u64,
    /// The fault.
    pub fault: Fault,
    /// Requests it may still fire on (`None`: unlimited).
    pub remaining: Option<u64>,
    /// Requests it fired on.
    pub hits: u64,
}
