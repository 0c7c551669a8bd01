//! The conformance harness: runs every credential flow against the Entra emulator, offline,
//! through one or more client libraries, and reports a matrix of scenario × adapter.
//!
//! - Scenarios are data ([`scenario`]): one TOML file per case under `conformance/scenarios/`.
//! - Adapters run them in a client library ([`adapter`]): [`rust_adapter`] in process, and
//!   [`process_adapter`] for any program that speaks the JSON-lines protocol (the Python adapter
//!   in `conformance/adapters/python/` is one).
//! - The [`driver`] prepares the emulator ([`target`]) for each case, runs the adapter, compares
//!   what happened with what was expected and scans the logs for secrets; [`report`] prints and
//!   writes the matrix.
#![warn(missing_docs)]

pub mod adapter;
pub mod driver;
pub mod process_adapter;
pub mod report;
pub mod resource;
pub mod rust_adapter;
pub mod scenario;
pub mod target;
