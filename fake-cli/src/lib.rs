//! Shared code for the fake `az` and `azd` binaries.
//!
//! The binaries themselves are not built yet: this crate is reserved so the workspace layout is
//! stable. Nothing here pretends to be a working CLI.
#![warn(missing_docs)]
