//! The accept loop: TLS handshakes with a deadline, HTTP/1 and HTTP/2, graceful stop, and
//! faults that drop a connection without answering.

use super::*;

/// How long a TLS handshake may take before the connection is dropped.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// File descriptors kept back from the connection cap for the emulator's own files, the
/// listeners and the runtime.
const RESERVED_FDS: u64 = 64;

/// How connections are bounded: the idle/header timeout and the most served at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// An HTTP/1 connection that does not send a complete request head within this is closed:
    /// both a slow client and an idle keep-alive connection (a leaky client pool) give back
    /// their file descriptor.
    pub(crate) idle_timeout: Duration,
    /// The most connections served at once; more wait in the listen backlog.
    pub(crate) max_connections: usize,
}

impl ConnectionLimits {
    /// The default: a 30 s idle timeout, and as many connections as the (raised) file
    /// descriptor limit allows, less [`RESERVED_FDS`].
    pub(crate) fn for_this_process() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            max_connections: fd_budget(),
        }
    }
}

/// Raises the soft open-files limit to the hard limit (the common 1024 soft limit runs out
/// with a few leaky client pools) and returns how many connections that leaves room for.
fn fd_budget() -> usize {
    #[cfg(unix)]
    {
        let limit = rlimit::increase_nofile_limit(u64::MAX)
            .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft))
            .unwrap_or(1024);
        usize::try_from(limit.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX)
    }
    #[cfg(not(unix))]
    {
        8192
    }
}

/// The connections being served, so a stop can let them finish (up to a deadline).
#[derive(Debug)]
pub(super) struct Connections {
    limits: ConnectionLimits,
    slots: Arc<tokio::sync::Semaphore>,
    /// Whether "the cap is reached" was logged since the last time there was room.
    at_cap: std::sync::atomic::AtomicBool,
    live: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
    /// Set when the drain deadline passes: connections still open are cut.
    force: watch::Sender<bool>,
}

/// Counts one connection (and holds its place under the cap) while it lives.
struct ConnectionGuard(
    Arc<Connections>,
    #[allow(dead_code)] tokio::sync::OwnedSemaphorePermit,
);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Connections {
    pub(super) fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            slots: Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1))),
            at_cap: std::sync::atomic::AtomicBool::new(false),
            live: std::sync::atomic::AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            force: watch::Sender::new(false),
        })
    }

    fn enter(self: &Arc<Self>, permit: tokio::sync::OwnedSemaphorePermit) -> ConnectionGuard {
        self.live.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        ConnectionGuard(self.clone(), permit)
    }

    /// A place under the cap for the next connection; waits (logging once) while the cap is
    /// reached. `None` when the emulator is stopping.
    async fn permit(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            self.at_cap.store(false, Ordering::Relaxed);
            return Some(permit);
        }
        if !self.at_cap.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max_connections = self.limits.max_connections,
                "connection cap reached: new connections wait until others close (idle ones close after {} s)",
                self.limits.idle_timeout.as_secs()
            );
        }
        tokio::select! {
            permit = self.slots.clone().acquire_owned() => permit.ok(),
            _ = shutdown.changed() => None,
        }
    }

    fn live(&self) -> usize {
        self.live.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until every connection has closed (each finishes its request in flight and
    /// closes; idle keep-alive ones close at once), or `deadline` passes; then cuts the rest.
    /// Returns how many were cut.
    pub(super) async fn drain(&self, deadline: Duration) -> usize {
        let all_closed = async {
            loop {
                let notified = self.idle.notified();
                if self.live() == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(deadline, all_closed).await;
        let cut = self.live();
        self.force.send_replace(true);
        cut
    }
}

/// What a listener serves: the emulator's routes, or transparent mode's proxy.
#[derive(Debug, Clone)]
pub(super) enum Handler {
    Routes(axum::Router),
    Proxy(Arc<super::proxy::Proxy>),
}

impl From<axum::Router> for Handler {
    fn from(router: axum::Router) -> Self {
        Self::Routes(router)
    }
}

/// Accepts connections until shutdown; each connection is served on its own task.
pub(super) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: impl Into<Handler>,
    mut shutdown: watch::Receiver<bool>,
    connections: Arc<Connections>,
) {
    let handler = app.into();
    loop {
        let Some(permit) = connections.permit(&mut shutdown).await else {
            return;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            // Accept errors (e.g. too many open files) are transient; back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        let guard = connections.enter(permit);
        let force = connections.force.subscribe();
        let idle_timeout = connections.limits.idle_timeout;
        tokio::spawn(async move {
            let _guard = guard;
            let app = match handler {
                Handler::Routes(app) => app,
                Handler::Proxy(proxy) => {
                    super::proxy::serve_client(stream, proxy, shutdown, force, idle_timeout).await;
                    return;
                }
            };
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                    let limits = ConnLimits { idle_timeout, h2 };
                    serve_connection(TokioIo::new(stream), app, shutdown, force, limits).await;
                }
                None => {
                    let limits = ConnLimits {
                        idle_timeout,
                        h2: false,
                    };
                    serve_connection(TokioIo::new(stream), app, shutdown, force, limits).await
                }
            }
        });
    }
}

/// How one connection is served: its protocol and idle timeout.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnLimits {
    pub(super) idle_timeout: Duration,
    /// HTTP/2 (negotiated by ALPN); HTTP/1.1 otherwise.
    pub(super) h2: bool,
}

pub(super) async fn serve_connection<I>(
    io: I,
    app: axum::Router,
    shutdown: watch::Receiver<bool>,
    force: watch::Receiver<bool>,
    limits: ConnLimits,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            let Ok(response) = app.oneshot(request.map(axum::body::Body::new)).await;
            if response
                .extensions()
                .get::<crate::routes::inject::DropConnection>()
                .is_some()
            {
                // A `hang` or `reset` fault: close the connection without a response.
                return Err(ConnectionDropped);
            }
            Ok(response)
        }
    });
    // The protocol is known up front (ALPN on TLS; HTTP/1.1 on the plain listener), so no
    // connection sits in version detection, which has no timeout.
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.idle_timeout);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Some(limits.idle_timeout))
        .keep_alive_timeout(limits.idle_timeout);
    let builder = if limits.h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    drain(connection, |c| c.graceful_shutdown(), shutdown, force).await;
}

/// Serves `connection` until it ends or the server stops; stopping, finishes the request in
/// flight (`graceful`), then closes; cut at the drain deadline (`force`). Every listener's
/// connections stop this way.
pub(super) async fn drain<C: std::future::Future>(
    mut connection: std::pin::Pin<&mut C>,
    graceful: impl FnOnce(std::pin::Pin<&mut C>),
    mut shutdown: watch::Receiver<bool>,
    mut force: watch::Receiver<bool>,
) {
    if !*shutdown.borrow() {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = shutdown.changed() => {}
        }
    }
    graceful(connection.as_mut());
    tokio::select! {
        _ = connection => {}
        _ = force.wait_for(|cut| *cut) => {}
    }
}

/// The error that makes hyper close a connection without answering (a fault).
#[derive(Debug)]
struct ConnectionDropped;

impl std::fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for ConnectionDropped {}
