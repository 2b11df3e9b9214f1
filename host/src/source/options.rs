//! What the PostgreSQL source needs to run, and how it retries.

use std::time::Duration;

use super::batcher::BatchLimits;
use super::connect::PgConnectOptions;
use super::snapshot::initial::SnapshotOptions;
use crate::contract::TableSelector;

/// Default time a pending row may wait for its batch to fill: short, because commit
/// markers (and so acknowledgements) wait for it too.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(20);
/// Default longest interval between standby status updates; PostgreSQL's default
/// `wal_sender_timeout` is 60 s.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(10);
/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Default interval of the search for new tables while streaming.
pub(super) const DEFAULT_TABLE_DISCOVERY: Duration = Duration::from_secs(10);
/// Prefix of weir's heartbeat messages (`pg_logical_emit_message`).
pub const HEARTBEAT_PREFIX: &str = "weir_heartbeat";
/// How often a moved flush position is reported at most.
pub(super) const STATUS_THROTTLE: Duration = Duration::from_millis(100);

/// How connection failures are retried: exponential backoff with jitter, for at most
/// `window` in a row (unbounded when `None`, e.g. for a standby waiting for its turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// Give up after failing this long without a working session.
    pub window: Option<Duration>,
}

impl Default for RetryPolicy {
    /// 0.5 s doubling to 30 s, for up to 6 hours: long enough to ride out a database
    /// failover or maintenance window, as managed services do.
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            window: Some(Duration::from_secs(6 * 3600)),
        }
    }
}

/// What the source needs to run.
#[derive(Debug, Clone)]
pub struct PostgresSourceConfig {
    /// Connection settings (from a `postgres://` URL, TLS included).
    pub connection: PgConnectOptions,
    /// The logical slot: created when missing, resumed when present.
    pub slot: String,
    /// The publication: created for `tables` when missing.
    pub publication: String,
    /// The tables to stream.
    pub tables: Vec<TableSelector>,
    /// Row and byte limits per batch.
    pub batch: BatchLimits,
    /// Longest a pending row waits for its batch to fill ([`DEFAULT_LINGER`]).
    pub linger: Duration,
    /// Longest interval between status updates ([`DEFAULT_STATUS_INTERVAL`]).
    pub status_interval: Duration,
    /// Emit a heartbeat message this often, so an idle database still advances the
    /// slot and lag stays measurable; `None` disables it.
    pub heartbeat: Option<Duration>,
    /// How connection failures (and a slot busy with another reader) are retried.
    pub retry: RetryPolicy,
    /// When and how the tables' existing rows are read.
    pub snapshot: SnapshotOptions,
    /// Have the server stream a transaction larger than its
    /// `logical_decoding_work_mem` while it runs (PostgreSQL 14+), weir holding it
    /// on its own disk until the commit; off, the server holds it and sends it at
    /// the commit. Off is the default: weir then processes the transaction while
    /// it arrives instead of after its last block, which measured 1.2–1.6× faster
    /// on a 1 M-row transaction (docs/PERFORMANCE.md); on spares the database
    /// server's disk.
    pub stream_in_progress: bool,
    /// Act on snapshot requests (`weir_signal` messages) in the WAL. Off by
    /// default: any role that may emit a logical message could send one.
    pub signals: bool,
    /// Change kinds (`_op` codes among `c`, `u`, `d`, `t`) left out at the source, as
    /// Debezium's `skipped.operations`; by default `t`: a TRUNCATE is logged once per
    /// table and counted, not sent.
    pub skipped_operations: Vec<u8>,
    /// Capture DDL with weir's event trigger (installed when missing) and emit
    /// it, with TRUNCATEs, as schema changes (needs PostgreSQL 14+, whose
    /// pgoutput sends logical messages).
    pub ddl_capture: bool,
    /// How often a running session looks for new tables a pattern selects, for a
    /// publication weir created ([`DEFAULT_TABLE_DISCOVERY`]); `None`: never.
    pub table_discovery: Option<Duration>,
    /// Whether the slot is a failover slot (PostgreSQL 17+).
    pub slot_failover: SlotFailover,
    /// Read a TOASTed value an update left unchanged from the table by primary key
    /// when the WAL has no old image holding it; off, it is left unavailable
    /// (encoders write Debezium's placeholder).
    pub fetch_unchanged_toast: bool,
}

/// Whether weir's slot is a failover slot, which standbys with
/// `sync_replication_slots` keep a copy of (PostgreSQL 17+).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SlotFailover {
    /// When the server has failover slots: created as one, and an existing slot
    /// made one.
    #[default]
    Auto,
    /// Always; a server before PostgreSQL 17 is an error.
    On,
    /// Never asked for (an existing failover slot stays one).
    Off,
}

impl SlotFailover {
    /// Whether a server of `major` version gets a failover slot; `Err` with the
    /// reason when `On` meets an older server.
    ///
    /// # Errors
    ///
    /// `On` before PostgreSQL 17.
    pub fn resolve(self, major: u32) -> Result<bool, String> {
        match self {
            SlotFailover::Auto => Ok(major >= 17),
            SlotFailover::On if major >= 17 => Ok(true),
            SlotFailover::On => Err(format!(
                "source.postgres.slot_failover is on, but failover slots need PostgreSQL 17 or later and this server is {major}; set it to auto or off"
            )),
            SlotFailover::Off => Ok(false),
        }
    }
}

impl PostgresSourceConfig {
    /// A configuration with weir's defaults.
    pub fn new(
        connection: PgConnectOptions,
        slot: &str,
        publication: &str,
        tables: Vec<TableSelector>,
    ) -> Self {
        PostgresSourceConfig {
            connection,
            slot: slot.to_owned(),
            publication: publication.to_owned(),
            tables,
            batch: BatchLimits::default(),
            linger: DEFAULT_LINGER,
            status_interval: DEFAULT_STATUS_INTERVAL,
            heartbeat: Some(DEFAULT_HEARTBEAT),
            retry: RetryPolicy::default(),
            snapshot: SnapshotOptions::default(),
            stream_in_progress: false,
            signals: false,
            skipped_operations: vec![crate::contract::columns::op::TRUNCATE],
            ddl_capture: false,
            table_discovery: Some(DEFAULT_TABLE_DISCOVERY),
            slot_failover: SlotFailover::Auto,
            fetch_unchanged_toast: false,
        }
    }
}
