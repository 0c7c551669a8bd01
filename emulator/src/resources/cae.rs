//! Continuous access evaluation: the principals an administrator revoked, and the claims
//! challenge resources send for a revoked principal's older CAE token.
//!
//! A revocation records the second it happened under every identifier of the principal (object
//! ids, client id, UPN). A CAE token (`xms_cc` with `cp1`) issued at or before that second is
//! refused with `insufficient_claims`; tokens issued later, and non-CAE tokens, are not
//! affected (non-CAE tokens keep working until they expire, as in Azure). So that a client
//! which reacts at once still gets a token that counts as newer, tokens for a revoked
//! principal are stamped as issued no earlier than the second after its revocation.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

/// Revoked principals: identifier (lower case) → the second of the latest revocation.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    revoked: RwLock<HashMap<String, i64>>,
    /// Whether any revocation exists: the common case costs one atomic load.
    any: AtomicBool,
}

impl Revocations {
    /// Records that the principal known by `ids` was revoked at `at` (seconds).
    pub(crate) fn revoke(&self, ids: &[String], at: i64) {
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            revoked.insert(id.to_ascii_lowercase(), at);
        }
        self.any.store(true, Ordering::Release);
    }

    /// The latest revocation of any of `ids`.
    pub(crate) fn revoked_at<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Option<i64> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let revoked = self.revoked.read().unwrap_or_else(|e| e.into_inner());
        ids.into_iter()
            .filter_map(|id| revoked.get(&id.to_ascii_lowercase()).copied())
            .max()
    }

    /// The issue time for a new token of the principal known by `ids`: `now`, or the second
    /// after its revocation when that is later (a token issued in the revocation's own second
    /// would count as revoked).
    pub(crate) fn issue_time<'a>(&self, ids: impl IntoIterator<Item = &'a str>, now: i64) -> i64 {
        match self.revoked_at(ids) {
            Some(at) if at >= now => at + 1,
            _ => now,
        }
    }

    /// Forgets every revocation (control-plane reset).
    pub(crate) fn clear(&self) {
        self.revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.any.store(false, Ordering::Release);
    }
}

/// The claims a client must bring back after a revocation at `revoked_at`:
/// `{"access_token":{"nbf":{"essential":true,"value":"<revoked_at>"}}}`.
pub(crate) fn claims(revoked_at: i64) -> String {
    json!({"access_token": {"nbf": {"essential": true, "value": revoked_at.to_string()}}})
        .to_string()
}

/// The `WWW-Authenticate` value of a claims challenge: the claims in standard base64 with
/// padding, as Azure resources send them (the JS SDK decodes them with `atob`).
pub(crate) fn challenge(authorization_uri: &str, revoked_at: i64) -> String {
    format!(
        r#"Bearer realm="", authorization_uri="{authorization_uri}", error="insufficient_claims", claims="{}""#,
        crate::crypto::b64std(claims(revoked_at))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_counts_for_every_identifier_and_stamps_later_tokens() {
        let r = Revocations::default();
        assert_eq!(r.revoked_at(["a"]), None);
        r.revoke(&["Client-Id".into(), "object-id".into()], 100);
        assert_eq!(r.revoked_at(["client-id"]), Some(100));
        assert_eq!(r.revoked_at(["other", "OBJECT-ID"]), Some(100));
        assert_eq!(r.issue_time(["object-id"], 100), 101);
        assert_eq!(r.issue_time(["object-id"], 150), 150);
        assert_eq!(r.issue_time(["other"], 100), 100);
        r.clear();
        assert_eq!(r.revoked_at(["client-id"]), None);
    }

    #[test]
    fn the_challenge_carries_standard_padded_base64_claims() {
        let header = challenge("https://127.0.0.1:1/t/oauth2/authorize", 1_700_000_000);
        let claims_b64 = header
            .split("claims=\"")
            .nth(1)
            .and_then(|s| s.strip_suffix('"'))
            .unwrap();
        assert!(!claims_b64.contains('-') && !claims_b64.contains('_'));
        assert_eq!(claims_b64.len() % 4, 0);
        let decoded = crate::crypto::b64_any(claims_b64).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(value["access_token"]["nbf"]["value"], "1700000000");
        assert_eq!(value["access_token"]["nbf"]["essential"], true);
        assert!(header.starts_with(r#"Bearer realm="", authorization_uri=""#));
        assert!(header.contains(r#"error="insufficient_claims""#));
    }
}
