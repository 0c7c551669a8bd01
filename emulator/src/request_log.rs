//! A bounded log of the requests clients sent, with secrets redacted.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Header names whose values are never logged.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "x-identity-header",
    "secret",
    "cookie",
    "proxy-authorization",
];

/// Form fields whose values are never logged.
const SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "client_assertion",
    "assertion",
    "password",
    "refresh_token",
    "code",
    "code_verifier",
    "device_code",
    // The sign-in page's password and verification code, and its flow token.
    "passwd",
    "otc",
    "flowToken",
];

/// The placeholder written instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// One logged request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoggedRequest {
    /// Sequence number, starting at 1.
    pub id: u64,
    /// When it arrived (RFC 3339, emulator clock).
    pub time: String,
    /// `https`, `http` or `service_fabric`: the listener it arrived on.
    pub listener: String,
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query parameters, in order.
    pub query: Vec<(String, String)>,
    /// Headers (lower-case names), secrets redacted.
    pub headers: BTreeMap<String, String>,
    /// Form fields of an `application/x-www-form-urlencoded` body, secrets redacted.
    pub form: Vec<(String, String)>,
    /// The response status; 0 when no response was sent (a `hang` or `reset` fault).
    pub status: u16,
    /// The endpoint the request's route serves; `None` for unknown paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<crate::faults::Endpoint>,
    /// The fault that hit this request (`#id name-or-action`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// For a protected resource's request: which one (`key_vault:<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The caller a resource's valid token named (`appid=…;oid=…;iss=…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The resource check that failed (`token_missing`, `signature`, `expired`, `audience`,
    /// `issuer`, `revoked`, `role_assignment`, `api_version`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_check: Option<String>,
}

impl LoggedRequest {
    /// The value of a form field, if present.
    pub fn form_field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a query parameter, if present.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Redacts a header value if the header carries a secret.
pub(crate) fn redact_header(name: &str, value: &str) -> String {
    if SECRET_HEADERS.contains(&name) {
        REDACTED.to_string()
    } else {
        value.to_string()
    }
}

/// Redacts a form field if it carries a secret.
pub(crate) fn redact_field(name: &str, value: &str) -> String {
    if SECRET_FIELDS.contains(&name) {
        REDACTED.to_string()
    } else {
        value.to_string()
    }
}

/// The log: a ring buffer of the most recent requests.
#[derive(Debug)]
pub(crate) struct RequestLog {
    entries: Mutex<VecDeque<LoggedRequest>>,
    next_id: AtomicU64,
    capacity: std::sync::atomic::AtomicUsize,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(1),
            capacity: capacity.into(),
        }
    }

    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn push(&self, entry: LoggedRequest) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.push_back(entry);
        while entries.len() > capacity {
            entries.pop_front();
        }
    }

    pub(crate) fn snapshot(&self) -> Vec<LoggedRequest> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(log: &RequestLog) -> LoggedRequest {
        LoggedRequest {
            endpoint: None,
            id: log.next_id(),
            time: String::new(),
            listener: "https".into(),
            method: "POST".into(),
            path: "/".into(),
            query: vec![],
            headers: BTreeMap::new(),
            form: vec![],
            status: 200,
            fault: None,
            resource: None,
            caller: None,
            failed_check: None,
        }
    }

    #[test]
    fn log_is_bounded_and_keeps_the_newest() {
        let log = RequestLog::new(3);
        for _ in 0..10 {
            log.push(entry(&log));
        }
        let ids: Vec<u64> = log.snapshot().iter().map(|e| e.id).collect();
        assert_eq!(ids, [8, 9, 10]);
        log.clear();
        assert!(log.snapshot().is_empty());
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact_field("client_secret", "s3cr3t"), REDACTED);
        assert_eq!(redact_field("client_assertion", "eyJ"), REDACTED);
        assert_eq!(redact_field("scope", "x/.default"), "x/.default");
        assert_eq!(redact_header("authorization", "Bearer t"), REDACTED);
        assert_eq!(redact_header("x-identity-header", "h"), REDACTED);
        assert_eq!(redact_header("user-agent", "ua"), "ua");
    }
}
