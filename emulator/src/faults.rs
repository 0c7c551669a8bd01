//! Fault injection: make chosen requests fail the way Entra, IMDS and the other hosts fail in
//! the field, so clients can be tested against throttling, outages, hangs and garbage.
//!
//! A [`Fault`] is a matcher ([`FaultMatch`]: endpoint kind, optionally tenant, client id and
//! resource), an [`FaultAction`], and how often it fires: the next `times` matching requests,
//! and/or with a `probability` drawn from a seeded generator so runs are reproducible. Faults
//! come from the seed (`[[faults]]` in the config file), the `--fault` flag, the control plane
//! (`/_emulator/faults`) and [`crate::Emulator::add_fault`]. The first active fault that matches
//! a request wins; the request log names the fault that hit each request.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The kinds of endpoint a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// The v1 and v2 token endpoints (`/{tenant}/oauth2/v2.0/token`, `/{tenant}/oauth2/token`).
    Token,
    /// OpenID discovery documents and instance discovery.
    Discovery,
    /// The token-signing keys (`/{tenant}/discovery/v2.0/keys`).
    Jwks,
    /// Azure Instance Metadata Service (`/metadata/identity/oauth2/token`).
    Imds,
    /// App Service / Functions (`/msi/token`).
    AppService,
    /// Azure Arc (`/arc/metadata/identity/oauth2/token`).
    Arc,
    /// Service Fabric (its own listener).
    ServiceFabric,
    /// Cloud Shell (`POST /oauth2/token`).
    CloudShell,
    /// Azure Machine Learning (`/azureml/msi/token`).
    AzureMl,
    /// Azure Pipelines OIDC (`.../oidctoken`).
    Pipelines,
}

impl Endpoint {
    /// Every endpoint kind.
    pub const ALL: [Endpoint; 10] = [
        Endpoint::Token,
        Endpoint::Discovery,
        Endpoint::Jwks,
        Endpoint::Imds,
        Endpoint::AppService,
        Endpoint::Arc,
        Endpoint::ServiceFabric,
        Endpoint::CloudShell,
        Endpoint::AzureMl,
        Endpoint::Pipelines,
    ];

    /// The name used in configs and flags (`token`, `imds`, `app_service`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Discovery => "discovery",
            Endpoint::Jwks => "jwks",
            Endpoint::Imds => "imds",
            Endpoint::AppService => "app_service",
            Endpoint::Arc => "arc",
            Endpoint::ServiceFabric => "service_fabric",
            Endpoint::CloudShell => "cloud_shell",
            Endpoint::AzureMl => "azure_ml",
            Endpoint::Pipelines => "pipelines",
        }
    }

    /// The kind of a request path; `service_fabric` says whether it arrived on the Service
    /// Fabric listener. `None` for the control plane and unknown paths.
    pub fn classify(path: &str, service_fabric: bool) -> Option<Endpoint> {
        if path.starts_with("/_emulator") {
            return None;
        }
        let trimmed = path.trim_end_matches('/');
        if trimmed == "/metadata/identity/oauth2/token" {
            return Some(if service_fabric {
                Endpoint::ServiceFabric
            } else {
                Endpoint::Imds
            });
        }
        let kind = match trimmed {
            "/msi/token" => Endpoint::AppService,
            "/arc/metadata/identity/oauth2/token" => Endpoint::Arc,
            "/oauth2/token" => Endpoint::CloudShell,
            "/azureml/msi/token" => Endpoint::AzureMl,
            "/common/discovery/instance" => Endpoint::Discovery,
            p if p.ends_with("/oauth2/v2.0/token") || p.ends_with("/oauth2/token") => {
                Endpoint::Token
            }
            p if p.ends_with("/.well-known/openid-configuration") => Endpoint::Discovery,
            p if p.ends_with("/discovery/v2.0/keys") || p.ends_with("/discovery/keys") => {
                Endpoint::Jwks
            }
            p if p.ends_with("/oidctoken") => Endpoint::Pipelines,
            _ => return None,
        };
        Some(kind)
    }

    /// Whether this endpoint answers errors in Entra's shape (the rest use IMDS's).
    pub(crate) fn is_entra(self) -> bool {
        matches!(
            self,
            Endpoint::Token | Endpoint::Discovery | Endpoint::Jwks | Endpoint::CloudShell
        )
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Endpoint::ALL
            .into_iter()
            .find(|e| e.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
                format!("unknown endpoint '{s}'; use one of {}", names.join(", "))
            })
    }
}

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
    /// Answer with `status`. Without a `body`, the body is an error in the endpoint's own shape
    /// (Entra's for token/discovery/JWKS/Cloud Shell, `{"error","error_description"}` for the
    /// managed-identity hosts). `retry_after` adds a `Retry-After` header (seconds).
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
    pub fn validate(&self) -> Result<(), String> {
        if let Some(p) = self.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err(format!("probability {p} is not between 0 and 1"));
        }
        if let FaultAction::Status { status, .. } = &self.action
            && !(100..=999).contains(status)
        {
            return Err(format!("status {status} is not an HTTP status"));
        }
        Ok(())
    }

    /// Parses the `--fault` flag: a JSON object, or the short form
    /// `ACTION@ENDPOINT[,key=value...]`, e.g. `status@imds,status=503,times=2`,
    /// `throttle@token,retry_after=5`, `latency@token,ms=200,probability=0.5,seed=7`,
    /// `hang@imds`. Keys `tenant`, `client_id` and `resource` narrow the match; `times`,
    /// `probability`, `seed` and `name` set how often; `header.NAME=VALUE` adds a header to a
    /// status; the rest are the action's fields. `throttle` is a 429 with `Retry-After`
    /// (`retry_after`, default 1). The endpoint may be `*` (any).
    pub fn parse_flag(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with('{') {
            let fault: Fault =
                serde_json::from_str(text).map_err(|e| format!("fault '{text}': {e}"))?;
            fault.validate()?;
            return Ok(fault);
        }
        let mut parts = text.split(',');
        let head = parts.next().unwrap_or_default();
        let (kind, endpoint) = head.split_once('@').unwrap_or((head, "*"));
        let mut action = serde_json::Map::new();
        let mut matcher = serde_json::Map::new();
        let mut top = serde_json::Map::new();
        let mut headers = serde_json::Map::new();
        let kind = match kind.trim() {
            "throttle" => {
                action.insert("status".into(), 429.into());
                action.insert("retry_after".into(), 1.into());
                "status"
            }
            other => other,
        };
        action.insert("kind".into(), kind.into());
        if endpoint.trim() != "*" {
            matcher.insert("endpoint".into(), endpoint.trim().into());
        }
        for part in parts.filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("fault '{text}': '{part}' is not key=value"))?;
            let (key, raw) = (key.trim(), value.trim());
            let value = flag_value(raw);
            if let Some(name) = key.strip_prefix("header.") {
                headers.insert(name.to_string(), raw.into());
                continue;
            }
            let target = match key {
                "tenant" | "client_id" | "resource" => &mut matcher,
                "times" | "probability" | "seed" | "name" => &mut top,
                _ => &mut action,
            };
            let value = match key {
                "tenant" | "client_id" | "resource" | "name" | "body" | "location" => raw.into(),
                "fields" => raw
                    .split('+')
                    .map(|f| serde_json::Value::from(f.trim()))
                    .collect(),
                _ => value,
            };
            target.insert(key.to_string(), value);
        }
        if !headers.is_empty() {
            action.insert("headers".into(), headers.into());
        }
        top.insert("action".into(), action.into());
        top.insert("match".into(), matcher.into());
        let fault: Fault =
            serde_json::from_value(top.into()).map_err(|e| format!("fault '{text}': {e}"))?;
        fault.validate()?;
        Ok(fault)
    }

    fn label(&self, id: u64) -> String {
        match &self.name {
            Some(name) => format!("#{id} {name}"),
            None => format!("#{id} {}", self.action.describe()),
        }
    }
}

fn flag_value(raw: &str) -> serde_json::Value {
    if let Ok(n) = raw.parse::<i64>() {
        return n.into();
    }
    if let Ok(x) = raw.parse::<f64>() {
        return x.into();
    }
    raw.into()
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

/// What a request looks like to the matchers.
#[derive(Debug, Default)]
pub(crate) struct FaultRequest<'a> {
    pub(crate) endpoint: Option<Endpoint>,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) resource: Option<&'a str>,
}

/// A fault chosen for a request.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    /// `#id name-or-action`, for the request log.
    pub(crate) label: String,
    pub(crate) action: FaultAction,
}

struct Active {
    id: u64,
    fault: Fault,
    remaining: Option<u64>,
    hits: u64,
    rng: Option<StdRng>,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("id", &self.id)
            .field("fault", &self.fault)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

fn matches(want: Option<&str>, have: Option<&str>) -> bool {
    match want {
        None => true,
        Some(want) => have.is_some_and(|h| h.eq_ignore_ascii_case(want)),
    }
}

impl Active {
    fn matches(&self, req: &FaultRequest<'_>) -> bool {
        let m = &self.fault.matcher;
        if self.remaining == Some(0) {
            return false;
        }
        if m.endpoint.is_some() && m.endpoint != req.endpoint {
            return false;
        }
        if req.endpoint.is_none() {
            return false;
        }
        matches(m.tenant.as_deref(), req.tenant)
            && matches(m.client_id.as_deref(), req.client_id)
            && m.resource.as_deref().is_none_or(|want| {
                req.resource.is_some_and(|have| {
                    have.to_ascii_lowercase()
                        .contains(&want.to_ascii_lowercase())
                })
            })
    }
}

/// The faults in effect.
#[derive(Debug, Default)]
pub(crate) struct FaultSet {
    any: AtomicBool,
    next_id: AtomicU64,
    active: Mutex<Vec<Active>>,
}

impl FaultSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any fault is installed (the fast path skips matching when none is).
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Relaxed)
    }

    /// Installs a fault; returns its id.
    pub(crate) fn add(&self, fault: Fault) -> Result<u64, String> {
        fault.validate()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let rng = fault.probability.map(|_| match fault.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        });
        let mut active = self.lock();
        active.push(Active {
            id,
            remaining: fault.times,
            fault,
            hits: 0,
            rng,
        });
        self.any.store(true, Ordering::Relaxed);
        Ok(id)
    }

    /// Replaces every fault with `faults`.
    pub(crate) fn replace(&self, faults: &[Fault]) -> Result<(), String> {
        for fault in faults {
            fault.validate()?;
        }
        self.clear();
        for fault in faults {
            self.add(fault.clone())?;
        }
        Ok(())
    }

    /// Removes one fault; false when there was none with `id`.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut active = self.lock();
        let before = active.len();
        active.retain(|a| a.id != id);
        self.any.store(!active.is_empty(), Ordering::Relaxed);
        active.len() != before
    }

    /// Removes every fault.
    pub(crate) fn clear(&self) {
        let mut active = self.lock();
        active.clear();
        self.any.store(false, Ordering::Relaxed);
    }

    /// The faults and their counters.
    pub(crate) fn list(&self) -> Vec<FaultStatus> {
        self.lock()
            .iter()
            .map(|a| FaultStatus {
                id: a.id,
                fault: a.fault.clone(),
                remaining: a.remaining,
                hits: a.hits,
            })
            .collect()
    }

    /// The fault that fires for `req`, if any, counting the hit.
    pub(crate) fn select(&self, req: &FaultRequest<'_>) -> Option<Selected> {
        let mut active = self.lock();
        for a in active.iter_mut() {
            if !a.matches(req) {
                continue;
            }
            if let (Some(p), Some(rng)) = (a.fault.probability, a.rng.as_mut())
                && rng.random::<f64>() >= p
            {
                continue;
            }
            if let Some(n) = a.remaining.as_mut() {
                *n -= 1;
            }
            a.hits += 1;
            return Some(Selected {
                label: a.fault.label(a.id),
                action: a.fault.action.clone(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_request() -> FaultRequest<'static> {
        FaultRequest {
            endpoint: Some(Endpoint::Token),
            tenant: Some("tenant-a"),
            client_id: Some("app-1"),
            resource: Some("https://vault.azure.net/.default"),
        }
    }

    #[test]
    fn paths_are_classified() {
        let cases = [
            ("/t/oauth2/v2.0/token", false, Some(Endpoint::Token)),
            ("/t/oauth2/token", false, Some(Endpoint::Token)),
            ("/oauth2/token", false, Some(Endpoint::CloudShell)),
            (
                "/t/v2.0/.well-known/openid-configuration",
                false,
                Some(Endpoint::Discovery),
            ),
            (
                "/common/discovery/instance",
                false,
                Some(Endpoint::Discovery),
            ),
            ("/t/discovery/v2.0/keys", false, Some(Endpoint::Jwks)),
            (
                "/metadata/identity/oauth2/token",
                false,
                Some(Endpoint::Imds),
            ),
            (
                "/metadata/identity/oauth2/token/",
                false,
                Some(Endpoint::Imds),
            ),
            (
                "/metadata/identity/oauth2/token",
                true,
                Some(Endpoint::ServiceFabric),
            ),
            ("/msi/token", false, Some(Endpoint::AppService)),
            (
                "/arc/metadata/identity/oauth2/token",
                false,
                Some(Endpoint::Arc),
            ),
            ("/azureml/msi/token", false, Some(Endpoint::AzureMl)),
            (
                "/o/p/_apis/distributedtask/hubs/h/plans/p/jobs/j/oidctoken",
                false,
                Some(Endpoint::Pipelines),
            ),
            ("/_emulator/faults", false, None),
            ("/elsewhere", false, None),
        ];
        for (path, sf, want) in cases {
            assert_eq!(Endpoint::classify(path, sf), want, "{path}");
        }
    }

    #[test]
    fn times_counts_down_and_retires() {
        let set = FaultSet::default();
        set.add(
            Fault::new(FaultAction::status(503))
                .on(Endpoint::Token)
                .times(2),
        )
        .unwrap();
        assert!(set.select(&token_request()).is_some());
        assert!(set.select(&token_request()).is_some());
        assert!(set.select(&token_request()).is_none());
        let status = &set.list()[0];
        assert_eq!((status.remaining, status.hits), (Some(0), 2));
    }

    #[test]
    fn matchers_narrow_by_endpoint_tenant_client_and_resource() {
        let set = FaultSet::default();
        let req = token_request();
        for (fault, fires) in [
            (Fault::new(FaultAction::Reset).on(Endpoint::Imds), false),
            (Fault::new(FaultAction::Reset).tenant("TENANT-A"), true),
            (Fault::new(FaultAction::Reset).tenant("tenant-b"), false),
            (Fault::new(FaultAction::Reset).client_id("app-1"), true),
            (Fault::new(FaultAction::Reset).client_id("app-2"), false),
            (Fault::new(FaultAction::Reset).resource("VAULT.azure"), true),
            (Fault::new(FaultAction::Reset).resource("storage"), false),
        ] {
            set.clear();
            set.add(fault.clone()).unwrap();
            assert_eq!(set.select(&req).is_some(), fires, "{fault:?}");
        }
        // Requests the classifier does not know (the control plane) are never faulted.
        set.clear();
        set.add(Fault::new(FaultAction::Reset)).unwrap();
        assert!(set.select(&FaultRequest::default()).is_none());
    }

    #[test]
    fn probability_is_reproducible_from_the_seed() {
        let run = |seed| {
            let set = FaultSet::default();
            set.add(Fault::new(FaultAction::Reset).probability(0.5, seed))
                .unwrap();
            (0..64)
                .map(|_| set.select(&token_request()).is_some())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let fired = a.iter().filter(|f| **f).count();
        assert!((16..=48).contains(&fired), "{fired} of 64 at p = 0.5");
    }

    #[test]
    fn the_first_matching_fault_wins_and_removal_works() {
        let set = FaultSet::default();
        let a = set
            .add(Fault::new(FaultAction::status(500)).named("first"))
            .unwrap();
        set.add(Fault::new(FaultAction::status(502))).unwrap();
        assert_eq!(set.select(&token_request()).unwrap().label, "#1 first");
        assert!(set.remove(a));
        assert!(!set.remove(a));
        assert_eq!(set.select(&token_request()).unwrap().label, "#2 status 502");
        set.clear();
        assert!(set.is_empty());
    }

    #[test]
    fn flags_parse_short_and_json_forms() {
        let f = Fault::parse_flag("status@imds,status=503,times=2,header.x-ms-test=1").unwrap();
        assert_eq!(f.matcher.endpoint, Some(Endpoint::Imds));
        assert_eq!(f.times, Some(2));
        let FaultAction::Status {
            status, headers, ..
        } = &f.action
        else {
            panic!("{f:?}")
        };
        assert_eq!(*status, 503);
        assert_eq!(headers["x-ms-test"], "1");

        let f = Fault::parse_flag("throttle@token,retry_after=5,client_id=abc").unwrap();
        assert_eq!(f.action, {
            let FaultAction::Status { headers, .. } = FaultAction::throttle(5) else {
                unreachable!()
            };
            FaultAction::Status {
                status: 429,
                body: None,
                headers,
                retry_after: Some(5),
            }
        });
        assert_eq!(f.matcher.client_id.as_deref(), Some("abc"));

        let f = Fault::parse_flag("latency@*,ms=200,probability=0.5,seed=7").unwrap();
        assert_eq!(f.action, FaultAction::Latency { ms: 200 });
        assert_eq!((f.probability, f.seed), (Some(0.5), Some(7)));
        assert_eq!(f.matcher.endpoint, None);

        let f = Fault::parse_flag("missing_fields@token,fields=access_token+expires_in").unwrap();
        assert_eq!(
            f.action,
            FaultAction::MissingFields {
                fields: vec!["access_token".into(), "expires_in".into()]
            }
        );

        let f = Fault::parse_flag(
            r#"{"match":{"endpoint":"app_service"},"action":{"kind":"hang"},"times":1}"#,
        )
        .unwrap();
        assert_eq!(f.action, FaultAction::Hang { secs: None });

        for bad in [
            "explode@token",
            "status@nowhere,status=500",
            "status@token",
            "reset@token,probability=2",
            "reset@token,times",
        ] {
            let err = Fault::parse_flag(bad).unwrap_err();
            assert!(
                err.contains("fault") || err.contains("probability"),
                "{bad}: {err}"
            );
        }
    }
}
