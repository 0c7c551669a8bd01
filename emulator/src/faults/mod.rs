//! Fault injection: make chosen requests fail the way Entra, IMDS and the other hosts fail in
//! the field, so clients can be tested against throttling, outages, hangs and garbage.
//!
//! A [`Fault`] is a matcher ([`FaultMatch`]: endpoint kind, optionally tenant, client id and
//! resource), an [`FaultAction`], and how often it fires: the next `times` matching requests,
//! and/or with a `probability` drawn from a seeded generator so runs are reproducible. Faults
//! come from the seed (`[[faults]]` in the config file), the `--fault` flag, the control plane
//! (`/_emulator/faults`) and [`crate::Emulator::add_fault`]. The first active fault that matches
//! a request wins; the request log names the fault that hit each request.

use serde::{Deserialize, Serialize};

mod flag;
mod model;
mod set;
#[cfg(test)]
mod tests;

pub use model::{
    DEFAULT_HANG_SECS, DEFAULT_OVERSIZED_BYTES, Fault, FaultAction, FaultMatch, FaultStatus,
};
pub(crate) use set::{FaultRequest, FaultSet, Selected};

/// Why a fault was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultError {
    /// The endpoint name is not one of [`Endpoint::ALL`].
    #[error("unknown endpoint '{name}'; use one of {known}")]
    UnknownEndpoint {
        /// The name given.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// `probability` is outside 0..=1.
    #[error("probability {0} is not between 0 and 1")]
    Probability(f64),
    /// `status` is not an HTTP status.
    #[error("status {0} is not an HTTP status")]
    Status(u16),
    /// The `--fault` text does not parse.
    #[error("fault '{text}': {reason}")]
    Syntax {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
}

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
    /// User sign-in pages: the authorization endpoint, the sign-in form and `/devicelogin`.
    Authorize,
    /// The device-code endpoint (`/{tenant}/oauth2/v2.0/devicecode`).
    DeviceCode,
    /// The Key Vaults' secrets data plane (each vault's listener).
    KeyVault,
    /// Azure Resource Manager (its own listener).
    Arm,
}

impl Endpoint {
    /// Every endpoint kind.
    pub const ALL: [Endpoint; 14] = [
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
        Endpoint::Authorize,
        Endpoint::DeviceCode,
        Endpoint::KeyVault,
        Endpoint::Arm,
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
            Endpoint::Authorize => "authorize",
            Endpoint::DeviceCode => "device_code",
            Endpoint::KeyVault => "key_vault",
            Endpoint::Arm => "arm",
        }
    }

    /// Whether this endpoint is Entra's own (its path starts with the tenant).
    pub(crate) fn is_entra(self) -> bool {
        matches!(
            self,
            Endpoint::Token
                | Endpoint::Discovery
                | Endpoint::Jwks
                | Endpoint::Authorize
                | Endpoint::DeviceCode
        )
    }
}

impl std::str::FromStr for Endpoint {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Endpoint::ALL
            .into_iter()
            .find(|e| e.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
                FaultError::UnknownEndpoint {
                    name: s.to_string(),
                    known: names.join(", "),
                }
            })
    }
}
