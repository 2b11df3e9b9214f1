//! The harness's one error type.

/// Why a harness operation failed. Test code usually `expect`s these; the messages
/// carry enough (command output, server logs) to diagnose a CI failure from the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    #[error("could not {action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {detail}")]
    Command { what: &'static str, detail: String },
    #[error("port {port} was taken before the server could bind it")]
    PortTaken { port: u16 },
    #[error("PostgreSQL query failed")]
    Postgres(#[source] tokio_postgres::Error),
    #[error("Kafka client failed")]
    Kafka(#[source] rdkafka::error::KafkaError),
    #[error(transparent)]
    InvalidLsn(#[from] weir::lsn::LsnParseError),
    #[error("broker: {0}")]
    Broker(String),
    #[error("replication: {0}")]
    Replication(String),
    /// The broker no longer holds a partition's first messages. librdkafka's mock
    /// cluster keeps at most 100 000 message sets or 5 MiB per partition and drops
    /// the oldest silently: a test reading such a topic would see data "lost"
    /// that weir delivered.
    #[error(
        "topic {topic} partition {partition} starts at offset {low}: the broker dropped its oldest messages (the mock cluster keeps 5 MiB per partition); produce less in this test"
    )]
    Truncated {
        topic: String,
        partition: i32,
        low: i64,
    },
    #[error("timed out after {after:?} while {doing}")]
    Timeout {
        doing: String,
        after: std::time::Duration,
    },
}

impl HarnessError {
    pub(crate) fn io(action: &'static str, source: std::io::Error) -> Self {
        Self::Io { action, source }
    }
}
