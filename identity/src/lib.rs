//! Microsoft Entra ID credentials for the Azure SDK for Rust.
//!
//! This crate re-implements the public API of Microsoft's `azure_identity` 1.x on top of the
//! real `azure_core` 1.x [`TokenCredential`](azure_core::credentials::TokenCredential) trait, so
//! its credentials plug into any Azure SDK client.
//!
//! | Credential | Authenticates |
//! |---|---|
//! | [`DefaultAzureCredential`] | the first available of environment, workload identity, managed identity, `az`, `azd` |
//! | [`ChainedTokenCredential`] | the first available of the credentials you list |
//! | [`EnvironmentCredential`] | a service principal from `AZURE_*` variables |
//! | [`ClientSecretCredential`] | an application with a client secret |
//! | `ClientCertificateCredential` (feature `client_certificate`) | an application with a certificate (PKCS#12 or PEM) |
//! | [`ClientAssertionCredential`] | an application with a signed assertion you supply |
//! | [`WorkloadIdentityCredential`] | a Kubernetes workload through Entra Workload ID |
//! | [`AzurePipelinesCredential`] | an Azure Pipelines service connection |
//! | [`AzureCliCredential`] | the identity signed in to `az` |
//! | [`AzureDeveloperCliCredential`] | the identity signed in to `azd` |
//! | [`DeveloperToolsCredential`] | `az`, then `azd` |
//! | [`ManagedIdentityCredential`] | the managed identity of an Azure host: IMDS, App Service, Arc, Service Fabric, Cloud Shell, Azure ML |
//!
//! # Where this crate differs from upstream
//!
//! - The token cache fetches once per scope set and never blocks one scope's callers behind
//!   another's network call; it refreshes ahead of expiry (honouring Entra's `refresh_in`) and
//!   keeps serving a still-valid token when a refresh fails.
//! - [`TokenRequestExtras`] adds a per-request tenant and claims challenge.
//! - A path in the authority host is kept, as the other Azure SDKs keep it.
//! - Every options struct has an `os` field ([`os::Os`]): environment, files and clock are
//!   injected, so tests never touch process-wide state.
//! - [`TokenCachePersistenceOptions`] on the user credentials and on `ClientSecretCredential` /
//!   `ClientCertificateCredential` keep tokens in MSAL's token cache, shared with the Python and
//!   JavaScript libraries: encrypted in the Secret Service with the feature `secret_service`,
//!   or a plain file when `allow_unencrypted_storage` allows it.
//! - A shared cache across replicas ([`shared_cache`], Redis with the feature `redis`).
#![warn(missing_docs)]

mod azure_pipelines_credential;
mod cache;
mod cached;
mod cae;
mod chained;
mod client_assertion_credential;
#[cfg(feature = "client_certificate")]
mod client_certificate_credential;
mod client_secret_credential;
mod confidential;
mod default_azure_credential;
mod developer_tools;
mod entra;
mod environment_credential;
mod errors;
#[cfg(test)]
mod fuzz;
mod limits;
mod managed_identity;
pub mod os;
pub mod shared_cache;
mod token;
mod user;
mod workload_identity_credential;

pub use azure_pipelines_credential::{AzurePipelinesCredential, AzurePipelinesCredentialOptions};
pub use cae::{
    Challenge, ClaimsChallengeHandler, ContinuousAccessPolicy, claims_from_challenge,
    parse_challenges,
};
pub use chained::{ChainedTokenCredential, ChainedTokenCredentialOptions};
pub use client_assertion_credential::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
};
#[cfg(feature = "client_certificate")]
pub use client_certificate_credential::{
    ClientCertificateCredential, ClientCertificateCredentialOptions,
};
pub use client_secret_credential::{ClientSecretCredential, ClientSecretCredentialOptions};
pub use confidential::TokenRequestExtras;
pub use default_azure_credential::{DefaultAzureCredential, DefaultAzureCredentialOptions};
pub use developer_tools::azure_cli::{AzureCliCredential, AzureCliCredentialOptions};
pub use developer_tools::azure_developer_cli::{
    AzureDeveloperCliCredential, AzureDeveloperCliCredentialOptions,
};
pub use developer_tools::executor::{Executor, new_executor};
pub use developer_tools::{DeveloperToolsCredential, DeveloperToolsCredentialOptions};
pub use environment_credential::{EnvironmentCredential, EnvironmentCredentialOptions};
pub use errors::{CredentialUnavailable, is_unavailable};
pub use limits::ExchangeLimits;
pub use managed_identity::{
    ImdsRetryOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
};
#[cfg(feature = "redis")]
pub use shared_cache::RedisTokenStore;
pub use shared_cache::{SharedTokenCache, TokenCacheStore};
pub use user::AuthenticationRecord;
pub use user::authorization_code::{
    AuthorizationCodeCredential, AuthorizationCodeCredentialOptions,
};
pub use user::device_code::{
    DeviceCodeCredential, DeviceCodeCredentialOptions, DeviceCodeInfo, DeviceCodePrompt,
};
#[cfg(feature = "tokio")]
pub use user::interactive_browser::{
    InteractiveBrowserCredential, InteractiveBrowserCredentialOptions,
};
pub use user::on_behalf_of::{OnBehalfOfCredential, OnBehalfOfCredentialOptions};
pub use user::persistent::TokenCachePersistenceOptions;
pub use workload_identity_credential::{
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
