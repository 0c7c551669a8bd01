//! Microsoft Entra ID credentials for the Azure SDK for Rust.
//!
//! This crate re-implements the public API of Microsoft's `azure_identity` 1.x on top of the
//! real `azure_core` 1.x `TokenCredential` trait. The credentials themselves arrive in the
//! following milestones; until then the crate exposes nothing, so no code can mistake it for a
//! working credential library.
#![warn(missing_docs)]
