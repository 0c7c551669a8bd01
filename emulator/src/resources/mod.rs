//! Protected resources: services that accept the emulator's tokens, check them as Azure's
//! resource providers do, and answer with challenges.
//!
//! - [`access`]: bearer-token validation (signature against the token keys, including keys in
//!   their grace period after a rotation; issuer; tenant; audience; lifetime with skew), with a
//!   cache of verified signatures, and the caller a token names;
//! - [`cae`]: continuous access evaluation: principals revoked through the control plane, and
//!   the claims challenge a revoked principal's older CAE token gets;
//! - [`key_vault`]: a Key Vault secrets data plane, one HTTPS listener per seeded vault, with
//!   Azure RBAC roles;
//! - [`arm`]: the Resource Manager calls sign-in tools make (tenants, subscriptions, cloud
//!   metadata), on its own HTTPS listener.

pub(crate) mod access;
pub(crate) mod arm;
pub(crate) mod cae;
pub(crate) mod key_vault;

/// A built-in Key Vault data-plane role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Everything.
    Administrator,
    /// Every secret operation.
    SecretsOfficer,
    /// Read secret values.
    SecretsUser,
    /// Read metadata (list, properties), never values.
    Reader,
}

/// What a request does to a vault's secrets, as Azure RBAC names the data actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Read a secret's value (`secrets/getSecret/action`).
    GetSecret,
    /// List secrets and versions, read deleted secrets' metadata (`secrets/readMetadata/action`).
    ReadMetadata,
    /// Set a secret (`secrets/setSecret/action`).
    SetSecret,
    /// Update a secret's attributes (`secrets/update/action`).
    Update,
    /// Delete a secret (`secrets/delete`).
    Delete,
    /// Recover a deleted secret (`secrets/recover/action`).
    Recover,
    /// Purge a deleted secret (`secrets/purge/action`).
    Purge,
}

impl Action {
    /// The RBAC data action, as a 403 names it.
    pub(crate) fn data_action(self) -> &'static str {
        match self {
            Action::GetSecret => "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            Action::ReadMetadata => "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            Action::SetSecret => "Microsoft.KeyVault/vaults/secrets/setSecret/action",
            Action::Update => "Microsoft.KeyVault/vaults/secrets/update/action",
            Action::Delete => "Microsoft.KeyVault/vaults/secrets/delete",
            Action::Recover => "Microsoft.KeyVault/vaults/secrets/recover/action",
            Action::Purge => "Microsoft.KeyVault/vaults/secrets/purge/action",
        }
    }
}

impl Role {
    /// The role names a seed may use.
    pub(crate) const NAMES: [&'static str; 4] = [
        "Key Vault Administrator",
        "Key Vault Secrets Officer",
        "Key Vault Secrets User",
        "Key Vault Reader",
    ];

    /// The role a seed names (case-insensitive).
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let roles = [
            Role::Administrator,
            Role::SecretsOfficer,
            Role::SecretsUser,
            Role::Reader,
        ];
        Self::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name.trim()))
            .map(|i| roles[i])
    }

    /// Whether the role allows `action`.
    pub(crate) fn allows(self, action: Action) -> bool {
        match self {
            Role::Administrator | Role::SecretsOfficer => true,
            Role::SecretsUser => matches!(action, Action::GetSecret | Action::ReadMetadata),
            Role::Reader => action == Action::ReadMetadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_by_name_and_allow_what_azure_allows() {
        assert_eq!(
            Role::parse("key vault secrets user"),
            Some(Role::SecretsUser)
        );
        assert_eq!(Role::parse("Owner"), None);
        assert!(Role::SecretsUser.allows(Action::GetSecret));
        assert!(!Role::SecretsUser.allows(Action::SetSecret));
        assert!(Role::Reader.allows(Action::ReadMetadata));
        assert!(!Role::Reader.allows(Action::GetSecret));
        assert!(Role::SecretsOfficer.allows(Action::Purge));
    }
}
