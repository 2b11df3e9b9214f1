//! Free loopback ports.

use std::net::{Ipv4Addr, TcpListener};

use crate::error::HarnessError;

/// A TCP port on 127.0.0.1 that was free a moment ago. Another process may take it
/// before we bind it again, so callers retry on "address in use".
pub fn free_loopback_port() -> Result<u16, HarnessError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| HarnessError::io("bind a loopback port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| HarnessError::io("read the bound port", e))?
        .port();
    Ok(port)
}
