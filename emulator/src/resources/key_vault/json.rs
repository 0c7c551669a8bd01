//! Key Vault's JSON: `SecretBundle`, `SecretItem`, `DeletedSecretBundle`, `DeletedSecretItem`,
//! and the bodies of set and update requests.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::RECOVERABLE_DAYS;
use super::store::{Deleted, SecretChange, Version};

/// `attributes` of a version.
fn attributes(v: &Version) -> Value {
    let mut a = Map::new();
    a.insert("enabled".into(), v.enabled.into());
    if let Some(nbf) = v.not_before {
        a.insert("nbf".into(), nbf.into());
    }
    if let Some(exp) = v.expires {
        a.insert("exp".into(), exp.into());
    }
    a.insert("created".into(), v.created.into());
    a.insert("updated".into(), v.updated.into());
    a.insert("recoveryLevel".into(), "Recoverable+Purgeable".into());
    a.insert("recoverableDays".into(), RECOVERABLE_DAYS.into());
    Value::Object(a)
}

/// The common fields: `id`, `attributes`, `contentType`, `tags`.
fn base(id: String, v: &Version) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".into(), id.into());
    m.insert("attributes".into(), attributes(v));
    if let Some(ct) = &v.content_type {
        m.insert("contentType".into(), ct.clone().into());
    }
    if let Some(tags) = &v.tags {
        m.insert("tags".into(), json!(tags));
    }
    m
}

/// `{origin}/secrets/{name}/{version}`.
pub(crate) fn secret_id(origin: &str, name: &str, version: &str) -> String {
    format!("{origin}/secrets/{name}/{version}")
}

/// A `SecretBundle`; the value only when `with_value` (an update answers without it).
pub(crate) fn bundle(origin: &str, name: &str, v: &Version, with_value: bool) -> Value {
    let mut m = base(secret_id(origin, name, &v.id), v);
    if with_value {
        m.insert("value".into(), v.value.clone().into());
    }
    Value::Object(m)
}

/// A `SecretItem` of a list of secrets (id without version) or of versions (`versioned`).
pub(crate) fn item(origin: &str, name: &str, v: &Version, versioned: bool) -> Value {
    let id = if versioned {
        secret_id(origin, name, &v.id)
    } else {
        format!("{origin}/secrets/{name}")
    };
    Value::Object(base(id, v))
}

fn deleted_fields(origin: &str, d: &Deleted, m: &mut Map<String, Value>) {
    m.insert(
        "recoveryId".into(),
        format!("{origin}/deletedsecrets/{}", d.secret.name).into(),
    );
    m.insert("deletedDate".into(), d.deleted_date.into());
    m.insert("scheduledPurgeDate".into(), d.scheduled_purge_date.into());
}

/// A `DeletedSecretBundle` (of the latest version; no value).
pub(crate) fn deleted_bundle(origin: &str, d: &Deleted) -> Value {
    let Some(latest) = d.secret.latest() else {
        return json!({});
    };
    let mut m = base(secret_id(origin, &d.secret.name, &latest.id), latest);
    deleted_fields(origin, d, &mut m);
    Value::Object(m)
}

/// A `DeletedSecretItem`.
pub(crate) fn deleted_item(origin: &str, d: &Deleted) -> Value {
    let Some(latest) = d.secret.latest() else {
        return json!({});
    };
    let mut m = base(format!("{origin}/secrets/{}", d.secret.name), latest);
    deleted_fields(origin, d, &mut m);
    Value::Object(m)
}

/// `attributes` in a request body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestAttributes {
    enabled: Option<bool>,
    nbf: Option<i64>,
    exp: Option<i64>,
}

/// The body of a set (`value` required) or update request.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SecretBody {
    pub(crate) value: Option<String>,
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    attributes: Option<RequestAttributes>,
}

impl SecretBody {
    /// Parses a request body; the error says what is wrong, in Key Vault's words where known.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err("The request body is empty.".into());
        }
        serde_json::from_slice(bytes).map_err(|e| format!("The request body is invalid: {e}."))
    }

    /// The property changes it asks for.
    pub(crate) fn change(&self) -> SecretChange {
        let attrs = self.attributes.as_ref();
        SecretChange {
            content_type: self.content_type.clone(),
            tags: self.tags.clone(),
            enabled: attrs.and_then(|a| a.enabled),
            not_before: attrs.and_then(|a| a.nbf),
            expires: attrs.and_then(|a| a.exp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> Version {
        Version {
            id: "0123456789abcdef0123456789abcdef".into(),
            value: "s3cret".into(),
            content_type: Some("text/plain".into()),
            tags: Some(BTreeMap::from([("env".to_string(), "test".to_string())])),
            enabled: true,
            not_before: None,
            expires: Some(2_000_000_000),
            created: 1_700_000_000,
            updated: 1_700_000_001,
        }
    }

    #[test]
    fn a_bundle_has_key_vaults_shape() {
        let b = bundle("https://v", "db", &version(), true);
        assert_eq!(
            b["id"],
            "https://v/secrets/db/0123456789abcdef0123456789abcdef"
        );
        assert_eq!(b["value"], "s3cret");
        assert_eq!(b["contentType"], "text/plain");
        assert_eq!(b["tags"]["env"], "test");
        assert_eq!(b["attributes"]["enabled"], true);
        assert_eq!(b["attributes"]["exp"], 2_000_000_000);
        assert_eq!(b["attributes"]["recoveryLevel"], "Recoverable+Purgeable");
        assert!(
            bundle("https://v", "db", &version(), false)
                .get("value")
                .is_none()
        );
        assert_eq!(
            item("https://v", "db", &version(), false)["id"],
            "https://v/secrets/db"
        );
    }

    #[test]
    fn bodies_parse_with_attributes() {
        let body = SecretBody::parse(
            br#"{"value":"v","contentType":"c","tags":{"a":"b"},"attributes":{"enabled":false,"exp":5}}"#,
        )
        .unwrap();
        assert_eq!(body.value.as_deref(), Some("v"));
        let change = body.change();
        assert_eq!(change.enabled, Some(false));
        assert_eq!(change.expires, Some(5));
        assert!(SecretBody::parse(b"").is_err());
        assert!(SecretBody::parse(b"[1]").is_err());
    }
}
