//! The token-cache hit, side by side: this workspace's `azure_identity` and upstream 1.0.0 in
//! one binary, the same loop of `get_token` calls through an `Arc<dyn TokenCredential>` on a
//! warm cache, a token as long as Entra's (~1.3 KB), alternating rounds so both see the same
//! machine state. Prints each round and the ratio of the medians.
//!
//!     cargo run --release [-- CALLS ROUNDS]

use std::sync::Arc;
use std::time::Instant;

use azure_core::credentials::TokenCredential;
use azure_core::http::headers::Headers;
use azure_core::http::{AsyncRawResponse, ClientOptions, HttpClient, Request, StatusCode, Transport};

const SCOPE: &str = "https://management.azure.com/.default";
const TENANT: &str = "11111111-1111-1111-1111-111111111111";
const CLIENT: &str = "22222222-2222-2222-2222-222222222222";

/// A token endpoint in memory: answers every request with the same ~1.3 KB token.
#[derive(Debug)]
struct Sts {
    token: String,
}

#[async_trait::async_trait]
impl HttpClient for Sts {
    async fn execute_request(&self, _: &Request) -> azure_core::Result<AsyncRawResponse> {
        let json = format!(
            r#"{{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"{}"}}"#,
            self.token
        );
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        Ok(AsyncRawResponse::from_bytes(StatusCode::Ok, headers, json.into_bytes()))
    }
}

fn options() -> ClientOptions {
    // BENCH_TOKEN_LEN sets the payload's length (default 1250: a ~1.3 KB token).
    let payload = std::env::var("BENCH_TOKEN_LEN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1250);
    let token = format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.sig", "x".repeat(payload));
    ClientOptions {
        transport: Some(Transport::new(Arc::new(Sts { token }))),
        ..Default::default()
    }
}

fn ours() -> Arc<dyn TokenCredential> {
    let options = ours::ClientSecretCredentialOptions {
        client_options: options(),
        ..Default::default()
    };
    ours::ClientSecretCredential::new(TENANT, CLIENT.into(), "secret".into(), Some(options))
        .expect("credential")
}

fn upstream() -> Arc<dyn TokenCredential> {
    let options = azure_identity::ClientSecretCredentialOptions {
        client_options: options(),
        ..Default::default()
    };
    azure_identity::ClientSecretCredential::new(TENANT, CLIENT.into(), "secret".into(), Some(options))
        .expect("credential")
}

/// Nanoseconds per call over `calls` warm-cache calls.
async fn round(credential: &Arc<dyn TokenCredential>, calls: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..calls {
        let token = credential.get_token(&[SCOPE], None).await.expect("token");
        std::hint::black_box(token);
    }
    start.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let calls: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let (a, b) = (ours(), upstream());
    // Warm both caches (and the allocator).
    round(&a, 1_000).await;
    round(&b, 1_000).await;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for r in 1..=rounds {
        let x = round(&a, calls).await;
        let y = round(&b, calls).await;
        println!("round {r}: this crate {x:6.1} ns/call   upstream 1.0.0 {y:6.1} ns/call   {:.2}x", y / x);
        xs.push(x);
        ys.push(y);
    }
    let (x, y) = (median(xs), median(ys));
    println!("median over {rounds} rounds of {calls} calls: this crate {x:.1} ns, upstream {y:.1} ns: {:.2}x faster", y / x);
}

