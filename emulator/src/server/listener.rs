//! The accept loop: TLS handshakes with a deadline, HTTP/1 and HTTP/2, graceful stop, and
//! faults that drop a connection without answering.

use super::*;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connections being served, so a stop can let them finish (up to a deadline).
#[derive(Debug)]
pub(super) struct Connections {
    live: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
    /// Set when the drain deadline passes: connections still open are cut.
    force: watch::Sender<bool>,
}

/// Counts one connection while it lives.
struct ConnectionGuard(Arc<Connections>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Connections {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            live: std::sync::atomic::AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            force: watch::Sender::new(false),
        })
    }

    fn enter(self: &Arc<Self>) -> ConnectionGuard {
        self.live.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        ConnectionGuard(self.clone())
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

/// Accepts connections until shutdown; each connection is served on its own task.
pub(super) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
    connections: Arc<Connections>,
) {
    loop {
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
        let app = app.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        let guard = connections.enter();
        let force = connections.force.subscribe();
        tokio::spawn(async move {
            let _guard = guard;
            match tls {
                Some(acceptor) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    serve_connection(TokioIo::new(stream), app, shutdown, force).await;
                }
                None => serve_connection(TokioIo::new(stream), app, shutdown, force).await,
            }
        });
    }
}

async fn serve_connection<I>(
    io: I,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
    mut force: watch::Receiver<bool>,
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
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    if !*shutdown.borrow() {
        tokio::select! {
            _ = connection.as_mut() => return,
            _ = shutdown.changed() => {}
        }
    }
    // Stopping: finish the request in flight, then close; cut at the drain deadline.
    connection.as_mut().graceful_shutdown();
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
