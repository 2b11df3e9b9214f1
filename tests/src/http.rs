//! A plain HTTP/1.1 GET, for weir's `/metrics`, `/health` and `/ready` (the
//! server closes the connection after each response).

use std::io::{Read as _, Write as _};

/// `GET path` from `address`; returns the status line and the body.
pub fn http_get(address: &str, path: &str) -> std::io::Result<(String, String)> {
    http_request(address, "GET", path, None)
}

/// `method path` with a JSON `body`, to a server that closes the connection
/// after each response; returns the status line and the body.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(String, String)> {
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {address}\r\n")?;
    if let Some(body) = body {
        write!(
            stream,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )?;
    }
    write!(stream, "Connection: close\r\n\r\n{}", body.unwrap_or(""))?;
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
