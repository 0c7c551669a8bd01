//! `get_token` through each CLI credential, cold (the CLI credentials do not cache, like
//! upstream: every call runs the tool), with the fake `az`/`azd` against the in-process
//! emulator. Measures process start, the tool's token request and output parsing.
//!
//! Run: `cargo bench -p fake-cli --bench cli_credentials`
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::*;
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let emu = rt
        .block_on(entra_emulator::Emulator::start())
        .expect("emulator");
    let az: Arc<dyn TokenCredential> = AzureCliCredential::new(Some(AzureCliCredentialOptions {
        executor: Some(support::executor(&emu, "azure_cli", &[])),
        os: support::os_with_path(None),
        ..Default::default()
    }))
    .expect("az credential");
    let azd: Arc<dyn TokenCredential> =
        AzureDeveloperCliCredential::new(Some(AzureDeveloperCliCredentialOptions {
            executor: Some(support::executor(&emu, "azure_developer_cli", &[])),
            os: support::os_with_path(None),
            ..Default::default()
        }))
        .expect("azd credential");
    let mut group = c.benchmark_group("cli credential get_token (cold)");
    group.sample_size(20);
    for (name, cred) in [
        ("AzureCliCredential", az),
        ("AzureDeveloperCliCredential", azd),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(cred.get_token(&["https://management.azure.com/.default"], None))
                    .expect("token")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
