//! A Key Vault secrets data plane: the operations the Azure SDKs' secret clients use, with Key
//! Vault's JSON shapes, ids and soft-delete. [`store`] keeps the data (in memory, and in the
//! state directory when one is given, so secrets survive a restart); [`json`] renders it.
//! The HTTP side is `routes::key_vault`.

pub(crate) mod json;
pub(crate) mod store;

pub(crate) use store::{StoreError, Vaults};

/// The resource Key Vault tokens are issued for.
pub(crate) const RESOURCE: &str = "https://vault.azure.net";
/// Key Vault's first-party application id (the `aud` of v2 tokens for it).
pub(crate) const APP_ID: &str = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093";
/// The `aud` values a vault accepts.
pub(crate) const AUDIENCES: [&str; 3] = [RESOURCE, "https://vault.azure.net/", APP_ID];
/// Days a deleted secret can be recovered.
pub(crate) const RECOVERABLE_DAYS: i64 = 90;

/// Whether Key Vault accepts `version` as an `api-version`: the 7.x family (and 2016-10-01),
/// and the date-based versions the newer SDKs send (2025 and later, `-preview` too).
pub(crate) fn api_version_supported(version: &str) -> bool {
    let version = version.strip_suffix("-preview").unwrap_or(version);
    if version == "2016-10-01" {
        return true;
    }
    if let Some(minor) = version.strip_prefix("7.") {
        return minor.len() == 1 && minor.bytes().all(|b| b.is_ascii_digit());
    }
    let parts: Vec<&str> = version.split('-').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    parts.len() == 3
        && digits(parts[0], 4)
        && digits(parts[1], 2)
        && digits(parts[2], 2)
        && parts[0] >= "2025"
}

/// Whether `name` is a valid secret name: 1-127 letters, digits and hyphens.
pub(crate) fn secret_name_is_valid(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_the_sdks_send_are_accepted() {
        for v in [
            "7.0",
            "7.4",
            "7.6-preview",
            "2016-10-01",
            "2025-07-01",
            "2026-04-01",
            "2026-03-01-preview",
        ] {
            assert!(api_version_supported(v), "{v}");
        }
        for v in [
            "",
            "7",
            "7.10",
            "6.0",
            "2024-01-01",
            "2025-7-01",
            "latest",
            "2025-07-01-beta",
        ] {
            assert!(!api_version_supported(v), "{v}");
        }
    }

    #[test]
    fn secret_names_follow_key_vault_rules() {
        assert!(secret_name_is_valid("db-password-1"));
        assert!(!secret_name_is_valid("has_underscore"));
        assert!(!secret_name_is_valid(""));
        assert!(!secret_name_is_valid(&"a".repeat(128)));
    }
}
