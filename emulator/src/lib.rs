//! An offline emulator of Microsoft Entra ID's token side.
//!
//! It serves the Entra token endpoint (v1 and v2), OpenID discovery, JWKS and instance
//! discovery over HTTPS with a locally generated CA, the Azure Pipelines OIDC endpoint, and a
//! control plane, so identity clients in any language can be tested with no Azure account.
//!
//! # In-process use
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use entra_emulator::{Emulator, well_known};
//!
//! let emulator = Emulator::start().await?;
//! // Ready-made azure_core options: the authority is the emulator, the transport trusts its CA.
//! let options = emulator.client_options();
//! let response = emulator
//!     .http_client()
//!     .post(emulator.token_url(well_known::TENANT_ID))
//!     .form(&[
//!         ("grant_type", "client_credentials"),
//!         ("client_id", well_known::SECRET_APP_CLIENT_ID),
//!         ("client_secret", well_known::CLIENT_SECRET),
//!         ("scope", "https://management.azure.com/.default"),
//!     ])
//!     .send()
//!     .await?;
//! assert!(response.status().is_success());
//! # drop(options);
//! # Ok(())
//! # }
//! ```
//!
//! # Faults
//!
//! [`Emulator::add_fault`] (or `--fault`, `[[faults]]` in a seed, `POST /_emulator/faults`)
//! makes chosen requests fail: throttling, outages, hangs, resets, garbage bodies, clock skew.
//! See [`faults`].
//!
//! # As a process
//!
//! The `entra-emulator` binary wraps this library; `--ready-file PATH` writes a [`ReadyInfo`]
//! JSON document once it is listening.
#![warn(missing_docs)]

mod assertion;
pub mod clock;
pub mod config;
mod context;
mod crypto;
mod directory;
mod error;
pub mod faults;
mod form;
mod grants;
mod pki;
mod ready;
mod request_log;
mod resources;
mod routes;
mod server;
mod sign_in;
pub mod stand_in;
mod state;
mod tokens;
pub mod wire;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Seed, SeedError, well_known};
pub use error::EmulatorError;
pub use faults::{Endpoint, Fault, FaultAction, FaultError, FaultMatch, FaultStatus};
pub use ready::ReadyInfo;
pub use request_log::{LoggedRequest, REDACTED};
pub use server::{DEFAULT_DRAIN, Emulator, EmulatorBuilder, StartError};
pub use tokens::KubernetesTokenRequest;
