//! Token-cache benchmarks (criterion):
//! - `get_token` on a cache hit, through the `TokenCredential` trait;
//! - 1,000 concurrent callers on one cold key (reports how many token requests were made);
//! - 100 distinct scopes at once against a token endpoint that takes 50 ms.
//!
//! Run: `cargo bench -p azure_identity --bench token_cache`
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use criterion::{Criterion, criterion_group, criterion_main};
use support::FakeSts;

const SCOPE: &str = "https://management.azure.com/.default";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn cache_hit(c: &mut Criterion) {
    let rt = runtime();
    let sts = FakeSts::new(Duration::ZERO, None);
    let credential = rt.block_on(async { sts.secret_credential() });
    rt.block_on(credential.get_token(&[SCOPE], None))
        .expect("warm-up token");
    let waker = futures::task::noop_waker();
    c.bench_function("get_token cache hit", |b| {
        b.iter(|| {
            // A hit completes on the first poll; poll it directly so the measurement is the
            // credential, not an executor.
            let mut cx = Context::from_waker(&waker);
            let mut future = credential.get_token(&[SCOPE], None);
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(token) => token.expect("token"),
                Poll::Pending => panic!("a cache hit must not wait"),
            }
        })
    });
}

fn cold_key_herd(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("1000 callers on one cold key");
    group.sample_size(20);
    group.bench_function("get_token", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sts = FakeSts::new(Duration::from_millis(5), None);
                let credential = rt.block_on(async { sts.secret_credential() });
                let start = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..1000)
                        .map(|_| {
                            let credential = credential.clone();
                            tokio::spawn(async move { credential.get_token(&[SCOPE], None).await })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task").expect("token");
                    }
                });
                total += start.elapsed();
                assert_eq!(sts.calls(), 1, "exactly one token request for 1000 callers");
            }
            total
        })
    });
    group.finish();
    println!("1000 callers on one cold key: exactly 1 token request (asserted every iteration)");
}

fn distinct_scopes(c: &mut Criterion) {
    let rt = runtime();
    let scopes: Arc<Vec<String>> = Arc::new(
        (0..100)
            .map(|i| format!("https://resource-{i}.example/.default"))
            .collect(),
    );
    let mut group = c.benchmark_group("100 scopes, endpoint delayed 50 ms");
    group.sample_size(10);
    group.bench_function("get_token", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let sts = FakeSts::new(Duration::from_millis(50), None);
                let credential = rt.block_on(async { sts.secret_credential() });
                let start = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..100)
                        .map(|i| {
                            let credential = credential.clone();
                            let scopes = scopes.clone();
                            tokio::spawn(async move {
                                credential.get_token(&[scopes[i].as_str()], None).await
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task").expect("token");
                    }
                });
                total += start.elapsed();
                assert_eq!(sts.calls(), 100);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, cache_hit, cold_key_herd, distinct_scopes);
criterion_main!(benches);
