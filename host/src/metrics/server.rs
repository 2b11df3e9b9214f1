//! The metrics endpoint: `GET /metrics` (Prometheus text format), `GET /health`
//! (200 while the pipeline runs without a failure, else 503) and `GET /ready` (200
//! once the source streams). One small HTTP/1.1 responder on tokio: every request
//! gets one response and the connection closes, which is all Prometheus and
//! Kubernetes probes need.
//!
//! Whoever reaches the port can use it, so it defends itself: each connection has
//! one deadline for its whole request and response ([`REQUEST_DEADLINE`], not reset
//! per byte); at most [`MAX_CONNECTIONS`] are served at once, a new one pushing
//! out the oldest (a probe sends its request at once, a client that holds a
//! connection open without sending is the one to go); and when `accept` fails
//! (file descriptors exhausted) the loop backs off instead of spinning. Bind it to
//! loopback or a private interface: the metrics name tables.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::PipelineMetrics;

/// Longest one connection lives: reading the request, answering, closing.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; the oldest goes when another arrives.
pub const MAX_CONNECTIONS: usize = 64;
/// Waits after a failed `accept`, doubling from the first to the second.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));
/// At most one warning about failing `accept`s this often.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// What the endpoint reports.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The metrics.
    pub metrics: Arc<PipelineMetrics>,
    /// Set once the source streams.
    pub ready: Arc<AtomicBool>,
}

/// Binds `address` and serves until `shutdown`. Returns the bound address (port 0
/// picks a free one) once listening.
pub async fn serve(
    address: SocketAddr,
    endpoint: Endpoint,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(accept_loop(listener, endpoint, shutdown));
    tracing::info!(address = %bound, "serving /metrics, /health and /ready");
    Ok(bound)
}

async fn accept_loop(listener: TcpListener, endpoint: Endpoint, shutdown: CancellationToken) {
    let open = Arc::new(OpenConnections::default());
    let mut backoff = ACCEPT_BACKOFF.0;
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff = ACCEPT_BACKOFF.0;
                stream
            }
            Err(error) => {
                if last_warning.is_none_or(|at| at.elapsed() >= ACCEPT_WARNING_INTERVAL) {
                    tracing::warn!(%error, "The metrics endpoint cannot accept connections; backing off.");
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        let (id, cancelled) = open.admit();
        let endpoint = endpoint.clone();
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            let served = tokio::select! {
                () = cancelled.cancelled() => Err(std::io::Error::other("pushed out by newer connections")),
                served = tokio::time::timeout(REQUEST_DEADLINE, respond(stream, &endpoint)) => {
                    served.unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "request deadline passed")))
                }
            };
            open.release(id);
            if let Err(error) = served {
                tracing::debug!(%error, "metrics request failed");
            }
        });
    }
}

/// The connections being served, oldest first.
#[derive(Debug, Default)]
struct OpenConnections {
    next_id: AtomicU64,
    open: Mutex<VecDeque<(u64, CancellationToken)>>,
}

impl OpenConnections {
    /// Registers a new connection, pushing out the oldest when at the cap.
    fn admit(&self) -> (u64, CancellationToken) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while open.len() >= MAX_CONNECTIONS {
            if let Some((_, oldest)) = open.pop_front() {
                oldest.cancel();
            }
        }
        open.push_back((id, token.clone()));
        (id, token)
    }

    fn release(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = open.iter().position(|(open_id, _)| *open_id == id) {
            open.remove(index);
        }
    }
}

async fn respond(mut stream: TcpStream, endpoint: &Endpoint) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read until the end of the headers (or 8 KiB); the caller's deadline bounds it.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..read]);
    }
    let line = request
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            endpoint.metrics.render(),
        ),
        ("GET", "/health") if endpoint.metrics.is_up() => ("200 OK", "text/plain", "ok\n".into()),
        ("GET", "/health") => ("503 Service Unavailable", "text/plain", "failing\n".into()),
        ("GET", "/ready") if endpoint.ready.load(Ordering::Relaxed) && endpoint.metrics.is_up() => {
            ("200 OK", "text/plain", "ready\n".into())
        }
        ("GET", "/ready") => (
            "503 Service Unavailable",
            "text/plain",
            "not ready\n".into(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn start() -> (SocketAddr, CancellationToken) {
        let endpoint = Endpoint {
            metrics: Arc::new(PipelineMetrics::default()),
            ready: Arc::new(AtomicBool::new(true)),
        };
        let shutdown = CancellationToken::new();
        let address = serve(
            "127.0.0.1:0".parse().expect("address"),
            endpoint,
            shutdown.clone(),
        )
        .await
        .expect("listens");
        (address, shutdown)
    }

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connects");
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .expect("request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .expect("response");
        response
    }

    /// Issue 15, item 5: hundreds of connections that send nothing do not keep
    /// a probe from its answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_connections_do_not_stall_health() {
        let (address, shutdown) = start().await;
        let mut idle = Vec::new();
        for _ in 0..300 {
            idle.push(TcpStream::connect(address).await.expect("connects"));
        }
        let started = Instant::now();
        // A pipeline not attached yet reports itself down: any answer will do.
        let response = tokio::time::timeout(Duration::from_secs(2), get(address, "/health"))
            .await
            .expect("answered while 300 connections idle");
        assert!(response.starts_with("HTTP/1.1 "), "{response}");
        let response = get(address, "/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(started.elapsed() < Duration::from_secs(1));
        // The oldest idle ones were pushed out: their reads see the close.
        let mut closed = 0;
        for stream in idle.iter_mut().take(10) {
            let mut byte = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_secs(1), stream.read(&mut byte)).await
            {
                closed += 1;
            }
        }
        assert_eq!(closed, 10, "the oldest idle connections were closed");
        shutdown.cancel();
    }

    /// A client that sends a byte at a time cannot hold a connection past the one
    /// deadline.
    #[tokio::test]
    async fn a_dripping_client_is_cut_off_at_the_deadline() {
        let (address, shutdown) = start().await;
        let mut stream = TcpStream::connect(address).await.expect("connects");
        let started = Instant::now();
        let mut cut_off = None;
        for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: "
            .iter()
            .cycle()
            .take(200)
        {
            if stream.write_all(&[*byte]).await.is_err() {
                cut_off = Some(started.elapsed());
                break;
            }
            let mut buffer = [0u8; 64];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await
            {
                cut_off = Some(started.elapsed());
                break;
            }
        }
        let cut_off = cut_off.expect("the server closed the connection");
        assert!(
            cut_off >= REQUEST_DEADLINE && cut_off < REQUEST_DEADLINE + Duration::from_secs(2),
            "closed after {cut_off:?}"
        );
        shutdown.cancel();
    }
}
