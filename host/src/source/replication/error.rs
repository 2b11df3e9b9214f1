//! Errors of the replication plane.

use std::fmt;

/// SQLSTATE `55006` (object_in_use): e.g. the slot is active for another process.
pub const SQLSTATE_OBJECT_IN_USE: &str = "55006";
/// SQLSTATE `42710` (duplicate_object): e.g. the slot exists already.
pub const SQLSTATE_DUPLICATE_OBJECT: &str = "42710";

/// Why a replication connection or command failed. (Each variant's message is its
/// documentation.)
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    #[error("invalid connection settings: {0}")]
    Config(String),
    #[error("TLS with the server failed: {0}")]
    Tls(String),
    #[error("could not connect to {address}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{address} is a standby (read-only), and target_session_attrs=read-write asks for the primary"
    )]
    ReadOnly { address: String },
    #[error("replication connection I/O failed")]
    Io(#[from] std::io::Error),
    #[error("the server closed the replication connection")]
    Closed,
    #[error("the server ended the replication stream (it is shutting down or restarting)")]
    StreamEnded,
    #[error("the server requires a password, and the connection settings have none")]
    PasswordRequired,
    #[error("the server asked for authentication weir does not support: {0}")]
    UnsupportedAuthentication(String),
    #[error("authentication failed in the client: {0}")]
    Authentication(#[source] std::io::Error),
    #[error("unexpected message from the server: {0}")]
    Protocol(String),
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl ReplicationError {
    /// The server's error, when the server reported one.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            ReplicationError::Server(error) => Some(error),
            _ => None,
        }
    }

    /// Whether retrying later may succeed: connection-level failures and a slot busy
    /// with another reader are; bad settings, authentication and protocol errors are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            ReplicationError::Connect { .. }
            // A standby may be promoted, or the primary come back.
            | ReplicationError::ReadOnly { .. }
            | ReplicationError::Io(_)
            | ReplicationError::Closed
            | ReplicationError::StreamEnded => true,
            ReplicationError::Server(error) => {
                error.code == SQLSTATE_OBJECT_IN_USE
                    // Class 08: connection exceptions; 57P: operator intervention (shutdown).
                    || error.code.starts_with("08")
                    || error.code.starts_with("57P")
                    // 53: insufficient resources (too many connections, no free WAL sender).
                    || error.code.starts_with("53")
            }
            _ => false,
        }
    }
}

/// An `ErrorResponse` from the server; fields are its documented fields.
#[allow(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct ServerError {
    pub severity: String,
    /// The SQLSTATE code, e.g. `55006`.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " (detail: {detail})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}
