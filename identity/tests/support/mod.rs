//! Test transports: a canned token endpoint (optionally slow) and a gate that holds responses
//! back until released. Shared by tests and benches.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_core::http::headers::Headers;
use azure_core::http::{
    AsyncRawResponse, ClientOptions, HttpClient, Request, StatusCode, Transport,
};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

/// Answers every request with a token (after `delay`), counting requests. Requests whose body
/// contains `hold_marker` wait until [`FakeSts::release`] is called.
#[derive(Debug)]
pub struct FakeSts {
    pub calls: AtomicUsize,
    delay: Duration,
    hold_marker: Option<String>,
    released: tokio::sync::watch::Sender<bool>,
    token: String,
}

impl FakeSts {
    pub fn new(delay: Duration, hold_marker: Option<&str>) -> Arc<Self> {
        Arc::new(Self {
            calls: AtomicUsize::new(0),
            delay,
            hold_marker: hold_marker.map(str::to_string),
            released: tokio::sync::watch::channel(false).0,
            // About the size of a real Entra access token.
            token: format!(
                "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{}.sig",
                "x".repeat(
                    std::env::var("BENCH_TOKEN_LEN")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1400)
                )
            ),
        })
    }

    pub fn release(&self) {
        self.released.send_replace(true);
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn client_options(self: &Arc<Self>) -> ClientOptions {
        ClientOptions {
            transport: Some(Transport::new(self.clone())),
            ..Default::default()
        }
    }

    pub fn secret_credential(self: &Arc<Self>) -> Arc<ClientSecretCredential> {
        ClientSecretCredential::new(
            "11111111-1111-1111-1111-111111111111",
            "22222222-2222-2222-2222-222222222222".into(),
            "secret".into(),
            Some(ClientSecretCredentialOptions {
                client_options: self.client_options(),
                ..Default::default()
            }),
        )
        .expect("credential")
    }
}

#[async_trait::async_trait]
impl HttpClient for FakeSts {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let body = match request.body() {
            azure_core::http::Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            #[allow(unreachable_patterns)]
            _ => String::new(),
        };
        if let Some(marker) = &self.hold_marker
            && body.contains(marker.as_str())
        {
            let mut rx = self.released.subscribe();
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let json = format!(
            r#"{{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"{}"}}"#,
            self.token
        );
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::Ok,
            headers,
            json.into_bytes(),
        ))
    }
}

/// Answers with a scripted sequence of statuses (with an optional `Retry-After`), then with an
/// IMDS-shaped token for every later request.
#[derive(Debug)]
pub struct Scripted {
    script: std::sync::Mutex<std::collections::VecDeque<(u16, Option<u32>)>>,
    pub calls: AtomicUsize,
}

impl Scripted {
    pub fn new(script: &[(u16, Option<u32>)]) -> Arc<Self> {
        Arc::new(Self {
            script: std::sync::Mutex::new(script.iter().copied().collect()),
            calls: AtomicUsize::new(0),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn client_options(self: &Arc<Self>) -> ClientOptions {
        ClientOptions {
            transport: Some(Transport::new(self.clone())),
            ..Default::default()
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for Scripted {
    async fn execute_request(&self, _request: &Request) -> azure_core::Result<AsyncRawResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.script.lock().unwrap().pop_front();
        let mut headers = Headers::new();
        headers.insert("content-type", "application/json");
        let (status, body) = match next {
            Some((status, retry_after)) => {
                if let Some(secs) = retry_after {
                    headers.insert("retry-after", secs.to_string());
                }
                (status, format!(r#"{{"error":"status {status}"}}"#))
            }
            None => (
                200,
                r#"{"access_token":"imds-token","expires_in":"3599","expires_on":"4102444800","resource":"https://management.azure.com","token_type":"Bearer"}"#.to_string(),
            ),
        };
        let status = StatusCode::from(status);
        Ok(AsyncRawResponse::from_bytes(
            status,
            headers,
            body.into_bytes(),
        ))
    }
}

/// A `redis-server` on a free loopback port, killed on drop (shared-cache tests and the replica
/// benchmark).
pub struct RedisServer {
    child: std::process::Child,
    /// `redis://127.0.0.1:PORT/`.
    pub url: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RedisServer {
    /// Starts one and waits (bounded, 5 s) until it accepts connections; `None` when
    /// `redis-server` is not on PATH or never listens.
    pub fn start() -> Option<Self> {
        use std::process::{Command, Stdio};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        None
    }

    /// Stops it now (Redis dying mid-run).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
