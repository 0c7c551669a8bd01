//! Empty: this package only hosts the upstream comparison benchmark.
