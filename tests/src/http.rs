//! A plain HTTP/1.1 GET, for weir's `/metrics`, `/health` and `/ready` (the
//! server closes the connection after each response).

use std::io::{Read as _, Write as _};

/// `GET path` from `address`; returns the status line and the body.
pub fn http_get(address: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    ))
}

/// The value of the Prometheus sample `name` (with its labels, as exposed:
/// `weir_sink_bytes_total{table="public.orders"}`) in a `/metrics` body.
pub fn metric_sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
