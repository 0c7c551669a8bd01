//! The seed: tenants, applications and their credentials, issuers, Pipelines service
//! connections and resources, as a TOML document.
//!
//! The emulator starts from [`Seed::default_seed`] unless given another. A seed is plain data:
//! it can be printed ([`Seed::to_toml`]), applied at run time through the control plane, and
//! extended one item at a time.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The built-in seed's TOML text.
pub const DEFAULT_SEED_TOML: &str = include_str!("default_seed.toml");

/// Well-known identifiers of the built-in seed.
pub mod well_known {
    /// The tenant.
    pub const TENANT_ID: &str = "11111111-1111-1111-1111-111111111111";
    /// The tenant's domain name.
    pub const TENANT_DOMAIN: &str = "emulator.onmicrosoft.com";
    /// The application that authenticates with a client secret.
    pub const SECRET_APP_CLIENT_ID: &str = "22222222-2222-2222-2222-222222222222";
    /// Its valid secret.
    pub const CLIENT_SECRET: &str = "emulator-client-secret";
    /// Its expired secret (answers AADSTS7000222).
    pub const EXPIRED_CLIENT_SECRET: &str = "emulator-expired-secret";
    /// The application that authenticates with a certificate.
    pub const CERTIFICATE_APP_CLIENT_ID: &str = "33333333-3333-3333-3333-333333333333";
    /// The name of its generated certificate (files `certs/<name>.pem` and `.pfx`).
    pub const CERTIFICATE_NAME: &str = "certificate-app";
    /// The password of its PKCS#12 file.
    pub const PFX_PASSWORD: &str = "emulator-pfx-password";
    /// The application with a federated credential for the Kubernetes issuer.
    pub const WORKLOAD_APP_CLIENT_ID: &str = "44444444-4444-4444-4444-444444444444";
    /// The emulator's Kubernetes service-account token issuer.
    pub const KUBERNETES_ISSUER: &str = "https://kubernetes.entra-emulator.local";
    /// The service account the workload application trusts.
    pub const KUBERNETES_SUBJECT: &str = "system:serviceaccount:default:workload-identity-sa";
    /// The application with a federated credential for the Pipelines issuer.
    pub const PIPELINES_APP_CLIENT_ID: &str = "55555555-5555-5555-5555-555555555555";
    /// The Pipelines service connection.
    pub const SERVICE_CONNECTION_ID: &str = "66666666-6666-6666-6666-666666666666";
    /// The Pipelines organization id (the issuer is `https://vstoken.dev.azure.com/{this}`).
    pub const PIPELINES_ORGANIZATION_ID: &str = "77777777-7777-7777-7777-777777777777";
    /// The Pipelines system access token.
    pub const SYSTEM_ACCESS_TOKEN: &str = "emulator-system-access-token";
    /// The system-assigned managed identity's client id.
    pub const SYSTEM_ASSIGNED_CLIENT_ID: &str = "a0a0a0a0-0000-4000-8000-000000000001";
    /// The first user-assigned managed identity's client id.
    pub const USER_ASSIGNED_CLIENT_ID: &str = "b1b1b1b1-0000-4000-8000-000000000001";
    /// The first user-assigned managed identity's object id.
    pub const USER_ASSIGNED_OBJECT_ID: &str = "b1b1b1b1-0000-4000-8000-0000000000a1";
    /// The first user-assigned managed identity's resource id.
    pub const USER_ASSIGNED_RESOURCE_ID: &str = "/subscriptions/cccccccc-cccc-cccc-cccc-cccccccccccc/resourcegroups/emulator-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/emulator-identity-1";
    /// The `secret` the Service Fabric and Azure ML endpoints expect.
    pub const MANAGED_IDENTITY_SECRET: &str = "emulator-msi-secret";
    /// The seeded user (Cloud Shell, developer tools).
    pub const USER_OBJECT_ID: &str = "c0c0c0c0-0000-4000-8000-000000000001";
    /// The seeded user's sign-in name.
    pub const USER_PRINCIPAL_NAME: &str = "emulator.user@emulator.onmicrosoft.com";
    /// The seeded user's password.
    pub const USER_PASSWORD: &str = "emulator-user-password";
    /// The subscription the developer tools report (home tenant).
    pub const SUBSCRIPTION_ID: &str = "cccccccc-cccc-cccc-cccc-cccccccccccc";
    /// The partner tenant's subscription.
    pub const PARTNER_SUBSCRIPTION_ID: &str = "dddddddd-dddd-4ddd-8ddd-dddddddddddd";
    /// The `IDENTITY_HEADER` the App Service endpoint expects.
    pub const APP_SERVICE_IDENTITY_HEADER: &str = "emulator-identity-header";
    /// The audience every federated credential expects by default.
    pub const FEDERATION_AUDIENCE: &str = "api://AzureADTokenExchange";
    /// The public client the developer tools and the Azure Identity libraries sign users in
    /// with (the Azure CLI's client id).
    pub const DEVELOPER_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    /// The second home-tenant user, whose sign-in needs a verification code.
    pub const MFA_USER_PRINCIPAL_NAME: &str = "emulator.mfa@emulator.onmicrosoft.com";
    /// The MFA user's object id.
    pub const MFA_USER_OBJECT_ID: &str = "c0c0c0c0-0000-4000-8000-000000000002";
    /// The MFA user's password.
    pub const MFA_USER_PASSWORD: &str = "emulator-mfa-password";
    /// The verification code the sign-in page's second step accepts for the MFA user.
    pub const MFA_CODE: &str = "424242";
    /// The partner tenant (the guest's home).
    pub const PARTNER_TENANT_ID: &str = "12121212-1212-4212-8212-121212121212";
    /// The guest: a partner-tenant user who is a guest in the home tenant.
    pub const GUEST_USER_PRINCIPAL_NAME: &str = "partner.guest@emulator-partner.onmicrosoft.com";
    /// The guest's home object id.
    pub const GUEST_USER_OBJECT_ID: &str = "c0c0c0c0-0000-4000-8000-000000000003";
    /// The guest's password.
    pub const GUEST_USER_PASSWORD: &str = "partner-guest-password";
    /// The confidential web app that signs users in with the authorization code flow.
    pub const WEB_APP_CLIENT_ID: &str = "abababab-abab-4bab-8bab-abababababab";
    /// The web app's client secret.
    pub const WEB_APP_SECRET: &str = "emulator-web-app-secret";
    /// The web app's registered redirect URI (loopback: any port matches).
    pub const WEB_APP_REDIRECT_URI: &str = "http://localhost/callback";
    /// The middle-tier API (on-behalf-of); users get tokens for it with `api://entra-emulator-api`.
    pub const MIDDLE_TIER_CLIENT_ID: &str = "99999999-9999-9999-9999-999999999999";
    /// The middle tier's client secret.
    pub const MIDDLE_TIER_SECRET: &str = "emulator-middle-tier-secret";
    /// The scope users ask for to call the middle tier.
    pub const MIDDLE_TIER_SCOPE: &str = "api://entra-emulator-api/.default";
    /// The home tenant's Key Vault (its URL is in the ready file's `key_vaults`).
    pub const KEY_VAULT_NAME: &str = "emulator-vault";
    /// The partner tenant's Key Vault.
    pub const PARTNER_KEY_VAULT_NAME: &str = "emulator-partner-vault";
    /// The scope of Key Vault tokens.
    pub const KEY_VAULT_SCOPE: &str = "https://vault.azure.net/.default";
    /// The name of the middle tier's generated certificate (`certs/middle-tier.pem`).
    pub const MIDDLE_TIER_CERTIFICATE_NAME: &str = "middle-tier";
}

/// A complete seed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Global settings.
    #[serde(default)]
    pub settings: Settings,
    /// Tenants.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// Applications (service principals), each in one tenant.
    #[serde(default)]
    pub applications: Vec<Application>,
    /// The emulator's Kubernetes issuer.
    #[serde(default)]
    pub kubernetes: KubernetesIssuer,
    /// Azure Pipelines service connections.
    #[serde(default)]
    pub pipelines: Vec<ServiceConnection>,
    /// External OIDC issuers whose tokens federated credentials may present.
    #[serde(default)]
    pub issuers: Vec<ExternalIssuer>,
    /// Resources (APIs) tokens can be requested for.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Managed identities: the host's system-assigned identity and user-assigned identities.
    #[serde(default)]
    pub managed_identities: Vec<ManagedIdentity>,
    /// Users (the Cloud Shell user, and the developer-tool user).
    #[serde(default)]
    pub users: Vec<User>,
    /// User sign-in: device-code timing and automatic approval.
    #[serde(default)]
    pub sign_in: SignInSettings,
    /// Faults in effect from the start (see [`crate::faults`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::faults::Fault>,
    /// Key Vaults (secrets data plane), each served on its own HTTPS listener.
    #[serde(default)]
    pub key_vaults: Vec<KeyVault>,
    /// Azure subscriptions, listed by the Resource Manager subset sign-in tools call.
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// An Azure subscription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The subscription id (a GUID).
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Its display name.
    pub display_name: String,
    /// `Enabled` (default), `Disabled`, `Warned`, `PastDue` or `Deleted`.
    #[serde(default = "enabled")]
    pub state: String,
    /// Tenants that manage it (Azure Lighthouse).
    #[serde(default)]
    pub managed_by_tenants: Vec<String>,
}

fn enabled() -> String {
    "Enabled".to_string()
}

/// A Key Vault: its name, its tenant and who may do what (Azure RBAC, as an RBAC vault
/// checks it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyVault {
    /// The vault's name (3-24 letters, digits and hyphens), as in `<name>.vault.azure.net`.
    pub name: String,
    /// The tenant whose tokens the vault accepts.
    pub tenant: String,
    /// Role assignments on the vault.
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignment>,
}

/// A role assignment on a vault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    /// Who: an application's or managed identity's client id or object id, or a user's UPN or
    /// object id.
    pub principal: String,
    /// The built-in role: `Key Vault Administrator`, `Key Vault Secrets Officer`,
    /// `Key Vault Secrets User` or `Key Vault Reader`.
    pub role: String,
}

impl KeyVault {
    /// Whether the name is one Azure accepts: 3-24 characters, letters, digits and hyphens,
    /// starting with a letter, not ending with a hyphen, no two hyphens in a row.
    pub fn name_is_valid(name: &str) -> bool {
        (3..=24).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && !name.ends_with('-')
            && !name.contains("--")
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    }
}

/// A user principal.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The tenant it lives in.
    pub tenant: String,
    /// Its object id.
    pub object_id: String,
    /// Its sign-in name.
    pub user_principal_name: String,
    /// A display name.
    #[serde(default)]
    pub display_name: String,
    /// The password the developer tools sign in with (resource-owner password grant).
    #[serde(default)]
    pub password: Option<String>,
    /// Whether sign-in needs a second factor: the password grant then fails with AADSTS50076
    /// and the sign-in page asks for [`User::mfa_code`].
    #[serde(default)]
    pub mfa_required: bool,
    /// The verification code the sign-in page's second step accepts.
    #[serde(default)]
    pub mfa_code: Option<String>,
    /// Tenants the user is a guest in (besides its home tenant, [`User::tenant`]).
    #[serde(default)]
    pub guest_in: Vec<String>,
}

impl User {
    /// Whether `who` is this user's UPN or object id (case-insensitive).
    pub fn matches(&self, who: &str) -> bool {
        self.user_principal_name.eq_ignore_ascii_case(who)
            || self.object_id.eq_ignore_ascii_case(who)
    }

    /// Whether `password` is the user's (compared in constant time; a user without one never
    /// matches).
    pub fn password_is(&self, password: &str) -> bool {
        self.password
            .as_deref()
            .is_some_and(|p| crate::crypto::constant_time_eq(p.as_bytes(), password.as_bytes()))
    }

    /// Whether the user may sign in to `tenant` (its home tenant or one it is a guest in).
    pub fn member_of(&self, tenant: &str) -> bool {
        self.tenant.eq_ignore_ascii_case(tenant)
            || self.guest_in.iter().any(|t| t.eq_ignore_ascii_case(tenant))
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("tenant", &self.tenant)
            .field("object_id", &self.object_id)
            .field("user_principal_name", &self.user_principal_name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("mfa_required", &self.mfa_required)
            .field("mfa_code", &self.mfa_code.as_ref().map(|_| "<redacted>"))
            .field("guest_in", &self.guest_in)
            .finish()
    }
}

/// A managed identity the emulated Azure host can use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentity {
    /// `true` for the host's system-assigned identity (used when a request names none).
    #[serde(default)]
    pub system_assigned: bool,
    /// The tenant it lives in.
    pub tenant: String,
    /// Its client (application) id.
    pub client_id: String,
    /// Its object (principal) id.
    pub object_id: String,
    /// Its ARM resource id (`/subscriptions/…/userAssignedIdentities/NAME`); system-assigned
    /// identities use the host's resource id.
    pub resource_id: String,
    /// App roles granted to it.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Global settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Lifetime of issued access tokens, seconds (Entra: 3599, 86399 for CAE clients).
    pub token_lifetime_secs: u64,
    /// Allowed clock skew when checking assertion `nbf`/`exp`, seconds.
    pub clock_skew_secs: u64,
    /// Reject unknown form fields, unknown resources and unknown api-versions.
    pub strict: bool,
    /// How long a rotated-out signing key stays in JWKS, seconds.
    pub key_grace_secs: u64,
    /// Capacity of the request log (oldest entries are dropped).
    pub request_log_capacity: usize,
    /// Largest request body accepted, bytes.
    pub max_body_bytes: usize,
    /// The `X-IDENTITY-HEADER` value the App Service endpoint expects (`IDENTITY_HEADER`).
    pub app_service_identity_header: String,
    /// The `secret` header the Service Fabric and Azure ML endpoints expect (`IDENTITY_HEADER`
    /// / `MSI_SECRET`).
    pub managed_identity_secret: String,
    /// Where the Azure Arc endpoint writes its challenge `.key` files; default
    /// `STATE_DIR/arc-tokens` (real clients insist on `/var/opt/azcmagent/tokens`, which the
    /// binary uses when it can write there).
    pub arc_key_directory: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            token_lifetime_secs: 3599,
            clock_skew_secs: 300,
            strict: false,
            key_grace_secs: 24 * 3600,
            request_log_capacity: 1000,
            max_body_bytes: 256 * 1024,
            app_service_identity_header: "emulator-identity-header".to_string(),
            managed_identity_secret: "emulator-msi-secret".to_string(),
            arc_key_directory: None,
        }
    }
}

/// User sign-in settings (`[sign_in]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SignInSettings {
    /// Seconds a device-code client waits between polls (Entra: 5).
    pub device_code_interval_secs: u64,
    /// How long a device code can be approved, seconds (Entra: 900).
    pub device_code_lifetime_secs: u64,
    /// How long an authorization code can be redeemed, seconds (Entra: about 600).
    pub authorization_code_lifetime_secs: u64,
    /// A user (UPN or object id) who approves every device code at once: for tests that have
    /// no browser and no control-plane call.
    pub auto_approve_device_codes: Option<String>,
    /// Decline every device code at once (for testing how clients handle a refusal).
    pub auto_decline_device_codes: bool,
}

impl Default for SignInSettings {
    fn default() -> Self {
        Self {
            device_code_interval_secs: 5,
            device_code_lifetime_secs: 900,
            authorization_code_lifetime_secs: 600,
            auto_approve_device_codes: None,
            auto_decline_device_codes: false,
        }
    }
}

/// A tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The tenant id (a GUID).
    pub id: String,
    /// Domain names that also address it.
    #[serde(default)]
    pub domains: Vec<String>,
    /// A display name.
    #[serde(default)]
    pub display_name: String,
}

/// An application registration with its service principal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// The tenant id it lives in.
    pub tenant: String,
    /// The application (client) id.
    pub client_id: String,
    /// The service principal's object id (`oid` of its tokens); derived when absent.
    #[serde(default)]
    pub object_id: Option<String>,
    /// A display name.
    #[serde(default)]
    pub display_name: String,
    /// App roles granted to it, put in `roles`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Client secrets.
    #[serde(default)]
    pub secrets: Vec<ClientSecret>,
    /// Certificates.
    #[serde(default)]
    pub certificates: Vec<CertificateSpec>,
    /// Federated identity credentials.
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
    /// A public client (no credential): may redeem authorization and device codes without a
    /// secret or assertion.
    #[serde(default)]
    pub public_client: bool,
    /// Where the authorization endpoint may send codes. A loopback URI
    /// (`http://localhost`, `http://127.0.0.1`) matches on any port, as in Entra.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Whether users of every seeded tenant may sign in to it (a multi-tenant app; the
    /// developer tools' public client is one).
    #[serde(default)]
    pub multi_tenant: bool,
}

/// A client secret.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientSecret {
    /// The secret value.
    pub value: String,
    /// When it expires (RFC 3339); never when absent.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires: Option<OffsetDateTime>,
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecret")
            .field("value", &"<redacted>")
            .field("expires", &self.expires)
            .finish()
    }
}

/// A certificate credential: generated by the emulator, or read from a PEM file.
#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CertificateSpec {
    /// Generate a key and certificate named this; files go to `certs/<name>.pem` and `.pfx`.
    #[serde(default)]
    pub generate: Option<String>,
    /// Password of the generated PKCS#12 file.
    #[serde(default)]
    pub pfx_password: Option<String>,
    /// Or: a PEM file holding the certificate (a key in it is ignored).
    #[serde(default)]
    pub pem_file: Option<String>,
    /// Or: the certificate as PEM text.
    #[serde(default)]
    pub pem: Option<String>,
}

impl std::fmt::Debug for CertificateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateSpec")
            .field("generate", &self.generate)
            .field(
                "pfx_password",
                &self.pfx_password.as_ref().map(|_| "<redacted>"),
            )
            .field("pem_file", &self.pem_file)
            .field("pem", &self.pem.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

/// A federated identity credential: an exact (issuer, subject, audience) triple.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    /// A name.
    #[serde(default)]
    pub name: String,
    /// The issuer (`iss`), matched exactly.
    pub issuer: String,
    /// The subject (`sub`), matched exactly and case-sensitively.
    pub subject: String,
    /// The audience (`aud`).
    #[serde(default = "default_audience")]
    pub audience: String,
}

fn default_audience() -> String {
    well_known::FEDERATION_AUDIENCE.to_string()
}

/// The emulator's Kubernetes service-account token issuer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesIssuer {
    /// The `iss` of the tokens it mints.
    pub issuer: String,
}

impl Default for KubernetesIssuer {
    fn default() -> Self {
        Self {
            issuer: well_known::KUBERNETES_ISSUER.to_string(),
        }
    }
}

/// An Azure Pipelines service connection backed by an application's federated credential.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConnection {
    /// The service connection id (`serviceConnectionId`).
    pub service_connection_id: String,
    /// Organization name.
    pub organization: String,
    /// Organization id (the issuer is `https://vstoken.dev.azure.com/{organization_id}`).
    pub organization_id: String,
    /// Project name.
    pub project: String,
    /// Project id.
    pub project_id: String,
    /// Connection name (the subject is `sc://{organization}/{project}/{connection_name}`).
    pub connection_name: String,
    /// Tenant of the application.
    pub tenant: String,
    /// The application the connection signs in as.
    pub client_id: String,
    /// The `System.AccessToken` the OIDC endpoint accepts.
    pub system_access_token: String,
}

impl std::fmt::Debug for ServiceConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConnection")
            .field("service_connection_id", &self.service_connection_id)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("connection_name", &self.connection_name)
            .field("client_id", &self.client_id)
            .field("system_access_token", &"<redacted>")
            .finish()
    }
}

impl ServiceConnection {
    /// The issuer of its OIDC tokens.
    pub fn issuer(&self) -> String {
        format!("https://vstoken.dev.azure.com/{}", self.organization_id)
    }

    /// The subject of its OIDC tokens.
    pub fn subject(&self) -> String {
        format!(
            "sc://{}/{}/{}",
            self.organization, self.project, self.connection_name
        )
    }
}

/// An external OIDC issuer with its signing keys.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExternalIssuer {
    /// The issuer (`iss`).
    pub issuer: String,
    /// Its JWKS as JSON text.
    #[serde(default)]
    pub jwks: Option<String>,
    /// Or a file holding its JWKS.
    #[serde(default)]
    pub jwks_file: Option<String>,
}

/// A resource (API) and the token version Entra issues for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Identifier URIs (compared without a trailing slash).
    pub identifier_uris: Vec<String>,
    /// The resource's application id (the `aud` of v2 tokens).
    pub app_id: String,
    /// 1 or 2.
    #[serde(default = "default_version")]
    pub token_version: u8,
}

fn default_version() -> u8 {
    2
}

impl Seed {
    /// The built-in seed.
    pub fn default_seed() -> Self {
        // The embedded seed is checked by a unit test; an empty seed is the safe fallback.
        Self::from_toml(DEFAULT_SEED_TOML).unwrap_or_default()
    }

    /// Parses and validates a seed.
    ///
    /// # Errors
    /// [`SeedError::Parse`] when the TOML is malformed, [`SeedError::Invalid`] when it is
    /// inconsistent; the text names the offending field.
    pub fn from_toml(text: &str) -> Result<Self, SeedError> {
        let seed: Seed = toml::from_str(text).map_err(|e| SeedError::Parse(e.to_string()))?;
        seed.validate()?;
        Ok(seed)
    }

    /// Parses and validates a seed given as JSON.
    ///
    /// # Errors
    /// As [`Seed::from_toml`].
    pub fn from_json(text: &str) -> Result<Self, SeedError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SeedError::Parse(e.to_string()))?;
        if !value.is_object() {
            return Err(SeedError::Parse(
                "a seed is a JSON object (or TOML document) with tenants, applications, …"
                    .to_string(),
            ));
        }
        let seed: Seed =
            serde_json::from_value(value).map_err(|e| SeedError::Parse(e.to_string()))?;
        seed.validate()?;
        Ok(seed)
    }

    /// The seed as TOML (the effective configuration).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks references and uniqueness.
    ///
    /// # Errors
    /// [`SeedError::Invalid`] with the first inconsistency found, described.
    pub fn validate(&self) -> Result<(), SeedError> {
        let tenant_ids = self.validate_tenants()?;
        let apps = self.validate_applications(&tenant_ids)?;
        self.validate_references(&tenant_ids, &apps)?;
        self.validate_users(&tenant_ids)?;
        self.validate_resources()?;
        self.validate_key_vaults(&tenant_ids)?;
        self.validate_subscriptions(&tenant_ids)
    }

    fn validate_subscriptions(&self, tenant_ids: &HashSet<String>) -> Result<(), SeedError> {
        let mut ids = HashSet::new();
        for s in &self.subscriptions {
            if uuid::Uuid::parse_str(&s.id).is_err() {
                return invalid(format!("subscription id '{}' is not a GUID", s.id));
            }
            if !ids.insert(s.id.to_ascii_lowercase()) {
                return invalid(format!("subscription '{}' is defined twice", s.id));
            }
            let tenants = std::iter::once(&s.tenant).chain(&s.managed_by_tenants);
            if let Some(t) = tenants
                .into_iter()
                .find(|t| !tenant_ids.contains(&t.to_ascii_lowercase()))
            {
                return invalid(format!(
                    "subscription '{}' names tenant '{t}', which the seed does not define",
                    s.id
                ));
            }
            let states = ["Enabled", "Disabled", "Warned", "PastDue", "Deleted"];
            if !states.contains(&s.state.as_str()) {
                return invalid(format!(
                    "subscription '{}' has state '{}'; use one of {}",
                    s.id,
                    s.state,
                    states.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn validate_key_vaults(&self, tenant_ids: &HashSet<String>) -> Result<(), SeedError> {
        let mut names = HashSet::new();
        for v in &self.key_vaults {
            if !KeyVault::name_is_valid(&v.name) {
                return invalid(format!(
                    "key vault name '{}' is invalid: use 3-24 letters, digits and hyphens, starting with a letter",
                    v.name
                ));
            }
            if !names.insert(v.name.to_ascii_lowercase()) {
                return invalid(format!("key vault '{}' is defined twice", v.name));
            }
            if !tenant_ids.contains(&v.tenant.to_ascii_lowercase()) {
                return invalid(format!(
                    "key vault '{}' names tenant '{}', which the seed does not define",
                    v.name, v.tenant
                ));
            }
            for a in &v.role_assignments {
                if crate::resources::Role::parse(&a.role).is_none() {
                    return invalid(format!(
                        "key vault '{}' assigns role '{}'; use one of {}",
                        v.name,
                        a.role,
                        crate::resources::Role::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_users(&self, tenant_ids: &HashSet<String>) -> Result<(), SeedError> {
        let mut names = HashSet::new();
        for u in &self.users {
            let tenants = std::iter::once(&u.tenant).chain(&u.guest_in);
            if let Some(t) = tenants
                .into_iter()
                .find(|t| !tenant_ids.contains(&t.to_ascii_lowercase()))
            {
                return invalid(format!(
                    "user '{}' names tenant '{t}', which the seed does not define",
                    u.user_principal_name
                ));
            }
            if !names.insert(u.user_principal_name.to_ascii_lowercase()) {
                return invalid(format!("user '{}' is defined twice", u.user_principal_name));
            }
            if u.mfa_required && u.mfa_code.as_deref().is_none_or(str::is_empty) {
                return invalid(format!(
                    "user '{}' has mfa_required = true but no mfa_code for the sign-in page's second step",
                    u.user_principal_name
                ));
            }
        }
        if self.sign_in.auto_decline_device_codes
            && self.sign_in.auto_approve_device_codes.is_some()
        {
            return invalid(
                "sign_in sets both auto_approve_device_codes and auto_decline_device_codes; keep one".into(),
            );
        }
        if let Some(who) = &self.sign_in.auto_approve_device_codes
            && !self.users.iter().any(|u| u.matches(who))
        {
            return invalid(format!(
                "sign_in.auto_approve_device_codes names '{who}', which is no seeded user's UPN or object id"
            ));
        }
        for a in &self.applications {
            for uri in &a.redirect_uris {
                if url::Url::parse(uri).is_err() {
                    return invalid(format!(
                        "application '{}' has redirect URI '{uri}', which is not an absolute URL",
                        a.client_id
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_tenants(&self) -> Result<HashSet<String>, SeedError> {
        let mut tenant_ids = HashSet::new();
        for t in &self.tenants {
            if uuid::Uuid::parse_str(&t.id).is_err() {
                return invalid(format!("tenant id '{}' is not a GUID", t.id));
            }
            if !tenant_ids.insert(t.id.to_ascii_lowercase()) {
                return invalid(format!("tenant '{}' is defined twice", t.id));
            }
        }
        Ok(tenant_ids)
    }

    fn validate_applications(
        &self,
        tenant_ids: &HashSet<String>,
    ) -> Result<HashSet<(String, String)>, SeedError> {
        let mut apps = HashSet::new();
        for a in &self.applications {
            if !tenant_ids.contains(&a.tenant.to_ascii_lowercase()) {
                return invalid(format!(
                    "application '{}' names tenant '{}', which the seed does not define",
                    a.client_id, a.tenant
                ));
            }
            let key = (
                a.tenant.to_ascii_lowercase(),
                a.client_id.to_ascii_lowercase(),
            );
            if !apps.insert(key) {
                return invalid(format!("application '{}' is defined twice", a.client_id));
            }
            a.validate_credentials()?;
        }
        Ok(apps)
    }

    fn validate_references(
        &self,
        tenant_ids: &HashSet<String>,
        apps: &HashSet<(String, String)>,
    ) -> Result<(), SeedError> {
        for p in &self.pipelines {
            let key = (
                p.tenant.to_ascii_lowercase(),
                p.client_id.to_ascii_lowercase(),
            );
            if !apps.contains(&key) {
                return invalid(format!(
                    "service connection '{}' names application '{}' in tenant '{}', which the seed does not define",
                    p.service_connection_id, p.client_id, p.tenant
                ));
            }
        }
        for m in &self.managed_identities {
            if !tenant_ids.contains(&m.tenant.to_ascii_lowercase()) {
                return invalid(format!(
                    "managed identity '{}' names tenant '{}', which the seed does not define",
                    m.client_id, m.tenant
                ));
            }
        }
        let system_assigned = self.managed_identities.iter().filter(|m| m.system_assigned);
        if system_assigned.count() > 1 {
            return invalid("only one managed identity may be system_assigned".into());
        }
        Ok(())
    }

    fn validate_resources(&self) -> Result<(), SeedError> {
        for r in &self.resources {
            if !(1..=2).contains(&r.token_version) {
                return invalid(format!(
                    "resource '{}' has token_version {}; use 1 or 2",
                    r.app_id, r.token_version
                ));
            }
        }
        Ok(())
    }
}

impl Application {
    /// Each certificate names one source with a usable name; federated issuers are trimmed.
    fn validate_credentials(&self) -> Result<(), SeedError> {
        for c in &self.certificates {
            let sources = [c.generate.is_some(), c.pem_file.is_some(), c.pem.is_some()];
            if sources.iter().filter(|s| **s).count() != 1 {
                return invalid(format!(
                    "a certificate of application '{}' must set exactly one of generate, pem_file, pem",
                    self.client_id
                ));
            }
            let usable = |name: &str| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            };
            if let Some(name) = c.generate.as_deref().filter(|n| !usable(n)) {
                return invalid(format!(
                    "certificate name '{name}' may only use letters, digits, '-' and '_'"
                ));
            }
        }
        for f in &self.federated_credentials {
            if f.issuer.trim() != f.issuer {
                return invalid(format!(
                    "federated credential issuer '{}' has leading or trailing whitespace",
                    f.issuer
                ));
            }
        }
        Ok(())
    }
}

/// Why a seed was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The text is not valid TOML or JSON for a seed.
    #[error("invalid seed: {0}")]
    Parse(String),
    /// The seed is inconsistent: a reference to something it does not define, a duplicate, a
    /// value out of range.
    #[error("invalid seed: {0}")]
    Invalid(String),
}

fn invalid<T>(message: String) -> Result<T, SeedError> {
    Err(SeedError::Invalid(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_seed_parses_and_round_trips() {
        let seed = Seed::from_toml(DEFAULT_SEED_TOML).expect("default seed is valid");
        assert_eq!(seed.tenants[0].id, well_known::TENANT_ID);
        assert_eq!(
            seed.pipelines[0].issuer(),
            format!(
                "https://vstoken.dev.azure.com/{}",
                well_known::PIPELINES_ORGANIZATION_ID
            )
        );
        let again = Seed::from_toml(&seed.to_toml()).expect("printed seed parses");
        assert_eq!(again, seed);
    }

    #[test]
    fn validation_names_the_problem() {
        let err = Seed::from_toml(
            "[[applications]]\ntenant = \"11111111-1111-1111-1111-111111111111\"\nclient_id = \"x\"\n",
        )
        .unwrap_err();
        assert!(
            matches!(&err, SeedError::Invalid(m) if m.contains("does not define")),
            "{err}"
        );
        let err = Seed::from_toml("[[tenants]]\nid = \"nope\"\n").unwrap_err();
        assert!(
            matches!(&err, SeedError::Invalid(m) if m.contains("not a GUID")),
            "{err}"
        );
        let err = Seed::from_toml("bogus = 1\n").unwrap_err();
        assert!(
            matches!(&err, SeedError::Parse(m) if m.contains("unknown field")),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let seed = Seed::default_seed();
        let text = format!("{seed:?}");
        assert!(!text.contains(well_known::CLIENT_SECRET));
        assert!(!text.contains(well_known::SYSTEM_ACCESS_TOKEN));
        assert!(!text.contains(well_known::PFX_PASSWORD));
    }
}
