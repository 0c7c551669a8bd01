//! End-to-end tests across the crates live in `tests/tests/`: the emulator's ready-file
//! profiles driving `azure_identity`. (Tests that spawn the fake CLIs live in `fake-cli/tests/`,
//! where Cargo exposes those binaries' paths; the real-client checks for other languages are in
//! `tests/real-clients/`.) This library is empty.
#![warn(missing_docs)]

/// The README's Rust examples, compiled as doctests so they stay true to the code.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeExamples;
