//! The shared (distributed) token cache against a real `redis-server` (started on a free port
//! by each test): replicas cold-started together make one token request; values can be sealed;
//! a dead lock holder delays the others by its lock's lifetime only; and Redis down, or killed
//! mid-run, never fails a caller.
//!
//! Needs `redis-server` on PATH (Debian: `redis-server`): without it the tests say so and pass
//! locally; under CI (`CI` set) they fail.
#![allow(clippy::disallowed_methods)] // real processes and real time

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, RedisTokenStore, SharedTokenCache,
};
use entra_emulator::{Emulator, well_known};

mod support;
use support::RedisServer;

const ARM: &str = "https://management.azure.com/.default";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` for one test, or the reason there is none (a failure under CI).
async fn redis() -> Option<RedisServer> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install redis-server for the shared-cache tests"
        );
        eprintln!("skipped: no redis-server on PATH (Debian: apt-get install redis-server)");
        return None;
    }
    let server = tokio::task::spawn_blocking(RedisServer::start)
        .await
        .unwrap();
    Some(server.expect("redis-server listens"))
}

async fn emulator() -> Emulator {
    Emulator::builder()
        .https_port(0)
        .http_port(0)
        .service_fabric_port(0)
        .start()
        .await
        .unwrap()
}

/// One replica: its own credential, in-memory cache and Redis connection.
fn replica(emu: &Emulator, url: &str, key: Option<[u8; 32]>) -> Arc<ClientSecretCredential> {
    let store = Arc::new(RedisTokenStore::new(url).unwrap());
    ClientSecretCredential::new(
        well_known::TENANT_ID,
        well_known::SECRET_APP_CLIENT_ID.into(),
        well_known::CLIENT_SECRET.into(),
        Some(ClientSecretCredentialOptions {
            client_options: emu.client_options(),
            shared_token_cache: Some(SharedTokenCache {
                store,
                encryption_key: key.map(|k| k.to_vec().into()),
            }),
            ..Default::default()
        }),
    )
    .unwrap()
}

fn token_requests(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.form_field("grant_type") == Some("client_credentials"))
        .count()
}

async fn cold_start(emu: &Emulator, url: &str, n: usize, key: Option<[u8; 32]>) -> Vec<String> {
    let replicas: Vec<_> = (0..n).map(|_| replica(emu, url, key)).collect();
    let calls = replicas.iter().map(|r| r.get_token(&[ARM], None));
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|t| t.unwrap().token.secret().to_string())
        .collect()
}

#[tokio::test]
async fn replicas_started_together_make_one_token_request() {
    let Some(redis) = redis().await else { return };
    let emu = emulator().await;
    let tokens = cold_start(&emu, &redis.url, 16, None).await;
    assert_eq!(
        token_requests(&emu),
        1,
        "16 replicas, one identity and scope"
    );
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "all got the shared token"
    );
    // Another scope is another key.
    replica(&emu, &redis.url, None)
        .get_token(&["https://vault.azure.net/.default"], None)
        .await
        .unwrap();
    assert_eq!(token_requests(&emu), 2);
}

#[tokio::test]
async fn sealed_values_need_the_key() {
    let Some(redis) = redis().await else { return };
    let emu = emulator().await;
    let key = [7u8; 32];
    let tokens = cold_start(&emu, &redis.url, 4, Some(key)).await;
    // What Redis holds is not the token.
    let client = redis::Client::open(redis.url.clone()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("azure_identity:token:*")
        .query_async(&mut c)
        .await
        .unwrap();
    let entry = keys
        .iter()
        .find(|k| !k.ends_with(":lock"))
        .expect("an entry");
    let raw: Vec<u8> = redis::cmd("GET")
        .arg(entry)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains(&tokens[0][..20]));
    // A replica with the key shares it; one with another key cannot read it and fetches.
    replica(&emu, &redis.url, Some(key))
        .get_token(&[ARM], None)
        .await
        .unwrap();
    assert_eq!(token_requests(&emu), 1);
    replica(&emu, &redis.url, Some([8u8; 32]))
        .get_token(&[ARM], None)
        .await
        .unwrap();
    assert_eq!(token_requests(&emu), 2);
}

#[tokio::test]
async fn a_dead_lock_holder_costs_its_lock_lifetime_only() {
    let Some(redis) = redis().await else { return };
    let emu = emulator().await;
    // A replica took the lock and died: the lock outlives it for 300 ms.
    let warm = replica(&emu, &redis.url, None);
    warm.get_token(&[ARM], None).await.unwrap();
    let client = redis::Client::open(redis.url.clone()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("azure_identity:token:*")
        .query_async(&mut c)
        .await
        .unwrap();
    let entry = keys.into_iter().find(|k| !k.ends_with(":lock")).unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&entry)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{entry}:lock"))
        .arg("dead")
        .arg("PX")
        .arg(300)
        .query_async(&mut c)
        .await
        .unwrap();
    let started = Instant::now();
    replica(&emu, &redis.url, None)
        .get_token(&[ARM], None)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    assert_eq!(token_requests(&emu), 2);
}

#[tokio::test]
async fn redis_down_or_killed_never_fails_a_caller() {
    let emu = emulator().await;
    // Nothing listens: every replica fetches directly, within the store's bound.
    let closed = format!("redis://127.0.0.1:{}/", free_port());
    let started = Instant::now();
    let tokens = cold_start(&emu, &closed, 4, None).await;
    assert_eq!(tokens.len(), 4);
    assert!(started.elapsed() < Duration::from_secs(10));
    let Some(redis) = redis().await else { return };
    let url = redis.url.clone();
    emu.clear_requests();
    cold_start(&emu, &url, 4, None).await;
    assert_eq!(token_requests(&emu), 1);
    // Killed mid-run: new replicas still get tokens.
    drop(redis);
    let tokens = cold_start(&emu, &url, 4, None).await;
    assert_eq!(tokens.len(), 4);
}
