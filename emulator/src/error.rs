//! The emulator's typed errors for its library API and control plane.

use crate::config::SeedError;
use crate::faults::FaultError;

/// Why a change to the emulator's state (seed, applications, faults, keys) was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The seed (or the edit to it) is not valid; the text says which value and why.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The seed is valid but its material (certificate files, keys) could not be prepared.
    #[error("{0}")]
    Directory(String),
    /// No application has the client id.
    #[error("no application has client id '{0}'")]
    ApplicationNotFound(String),
    /// A fault was refused.
    #[error(transparent)]
    Fault(#[from] FaultError),
    /// No seeded user has the UPN or object id.
    #[error("no seeded user has the UPN or object id '{0}'")]
    UserNotFound(String),
    /// No seeded user, application or managed identity is the subject of a revocation.
    #[error(
        "no seeded user, application or managed identity is '{0}': give a user's UPN or object id, or a client id or object id"
    )]
    PrincipalNotFound(String),
    /// A device code cannot be approved or declined; the text says why (unknown, expired,
    /// already decided, or the user cannot sign in to its tenant).
    #[error("{0}")]
    DeviceCode(String),
    /// Key material could not be read or written.
    #[error("key ring {file}: {message}")]
    Keys {
        /// The key-ring file.
        file: String,
        /// What went wrong.
        message: String,
    },
}

impl EmulatorError {
    /// Whether the error names something that does not exist (the control plane answers 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            EmulatorError::ApplicationNotFound(_)
                | EmulatorError::UserNotFound(_)
                | EmulatorError::PrincipalNotFound(_)
        )
    }
}
