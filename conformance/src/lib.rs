//! The conformance harness: scenarios as data, one driver, several client adapters.
//!
//! Reserved for the harness milestone; it contains no scenarios yet.
#![warn(missing_docs)]
