//! Helpers for the end-to-end tests in `tests/tests/`.
#![warn(missing_docs)]
