//! The load generator the benchmarks share: keep-alive TLS connections, opened before the
//! clock starts, each sending one request after another.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// The `p` quantile of sorted latencies.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

/// Successes, errors, the successes' latencies, and the elapsed time.
pub(crate) type LoadResult = (u64, u64, Vec<Duration>, Duration);

/// When a load run ends: after a time, or after a number of requests.
#[derive(Clone, Copy)]
pub(crate) enum Stop {
    /// Run for this long.
    After(Duration),
    /// Send this many requests in all.
    Count(u64),
}

/// Runs `request` (a complete HTTP/1.1 request) over `connections` keep-alive TLS connections
/// to `authority` (`host:port`, trusting `ca_pem`) until `stop`; only 200s count as successes.
pub(crate) async fn load(
    authority: &str,
    ca_pem: &[u8],
    request: String,
    connections: usize,
    stop: Stop,
) -> LoadResult {
    let ca = ca_pem;
    let connector = tls_connector(ca);
    // Open every connection first: TLS handshakes are not part of the measurement.
    let mut streams = Vec::new();
    for _ in 0..connections {
        let tcp = tokio::net::TcpStream::connect(authority)
            .await
            .expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
        exchange(&mut tls, request.as_bytes())
            .await
            .expect("warm-up request");
        streams.push(tls);
    }
    let start = Instant::now();
    let tickets = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for mut tls in streams {
        let request = request.clone();
        let tickets = tickets.clone();
        let more = move || match stop {
            Stop::After(duration) => Instant::now() < start + duration,
            Stop::Count(n) => tickets.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n,
        };
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while more() {
                let t = Instant::now();
                match exchange(&mut tls, request.as_bytes()).await {
                    Ok(200) => latencies.push(t.elapsed()),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            all.extend(l);
            errors += e;
        }
    }
    let elapsed = start.elapsed();
    (all.len() as u64, errors, all, elapsed)
}

fn tls_connector(ca_pem: &[u8]) -> tokio_rustls::TlsConnector {
    let text = String::from_utf8_lossy(ca_pem);
    let start = text.find("-----BEGIN CERTIFICATE-----").expect("PEM") + 27;
    let end = text.find("-----END CERTIFICATE-----").expect("PEM");
    let b64: String = text[start..end].split_whitespace().collect();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(der))
        .expect("CA");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// Sends one HTTP/1.1 request on a keep-alive connection and reads the whole response.
/// Returns the status code.
async fn exchange<S>(stream: &mut S, request: &[u8]) -> std::io::Result<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(request).await?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(status)
}
