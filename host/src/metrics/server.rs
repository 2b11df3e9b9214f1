//! The metrics endpoint: `GET /metrics` (Prometheus text format), `GET /health`
//! (200 while the pipeline runs without a failure, else 503) and `GET /ready` (200
//! once the source streams). One small HTTP/1.1 responder on tokio: every request
//! gets one response and the connection closes, which is all Prometheus and
//! Kubernetes probes need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::PipelineMetrics;

/// Longest a client may take to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

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
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else { continue };
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                if let Err(error) = respond(stream, &endpoint).await {
                    tracing::debug!(%error, "metrics request failed");
                }
            });
        }
    });
    tracing::info!(address = %bound, "serving /metrics, /health and /ready");
    Ok(bound)
}

async fn respond(mut stream: TcpStream, endpoint: &Endpoint) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read until the end of the headers (or 8 KiB, or the timeout).
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let read = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out")
            })??;
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
