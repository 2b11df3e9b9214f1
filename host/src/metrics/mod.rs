//! Prometheus metrics of a running pipeline, and the HTTP endpoint that serves them
//! with `/health` and `/ready` ([`server`]).
//!
//! Counters are updated once per batch by the pipeline's worker (never per row);
//! gauges that mirror state kept elsewhere (replication lag, the flush LSN, messages
//! in flight) are read when Prometheus scrapes, so they cost nothing in between.

pub mod server;
mod source;

pub use source::SourceStats;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::checkpoint::CheckpointTracker;

/// `table="schema.table"`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    /// `schema.table`.
    pub table: String,
}

/// `stage="…",table="…"`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageTableLabels {
    /// `source`, a plugin stage's name, or `sink`.
    pub stage: String,
    /// `schema.table`.
    pub table: String,
}

/// `stage="…"`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// A plugin stage's name.
    pub stage: String,
}

/// Every metric of one pipeline.
pub struct PipelineMetrics {
    registry: Registry,
    /// Rows into a stage, per stage and table.
    pub rows_in: Family<StageTableLabels, Counter>,
    /// Rows out of a stage, per stage and table.
    pub rows_out: Family<StageTableLabels, Counter>,
    /// Batches read from the source, per table.
    pub batches: Family<TableLabel, Counter>,
    /// Bytes of message keys and values produced, per table.
    pub bytes: Family<TableLabel, Counter>,
    /// Seconds spent in each plugin stage.
    pub plugin_seconds: Family<StageLabel, Counter<f64, AtomicU64>>,
    /// Failed plugin calls per stage (whatever `on_error` made of them).
    pub plugin_errors: Family<StageLabel, Counter>,
    /// Rows sent to the dead-letter topic.
    pub dead_letters: Counter,
    /// Seconds spent encoding.
    pub encode_seconds: Counter<f64, AtomicU64>,
    /// Time from handing a message to the producer to Kafka's acknowledgement.
    pub produce_latency: Histogram,
    /// Time from the transaction's commit in PostgreSQL to Kafka's acknowledgement:
    /// the end-to-end delay a consumer sees.
    pub commit_to_ack: Histogram,
    /// Exactly-once: how long committing a Kafka transaction took (the wait for
    /// its messages' acknowledgements and the commit itself).
    pub kafka_commit: Histogram,
    /// Transactions whose commit marker was processed.
    pub transactions: Counter,
    /// Snapshot rows of a table acknowledged by Kafka (a resumed snapshot
    /// starts from the recorded count).
    pub snapshot_rows: Family<TableLabel, Gauge>,
    /// The planner's estimate of a table's rows, for the snapshot's percentage.
    pub snapshot_rows_estimated: Family<TableLabel, Gauge>,
    in_flight: Gauge,
    lag_bytes: Gauge,
    lag_seconds: Gauge<f64, AtomicU64>,
    flush_lsn: Gauge,
    streaming: Gauge,
    slot_retained: Gauge,
    slot_safe: Gauge,
    slot_limit: Gauge,
    truncates_skipped: Counter,
    /// Schema changes (captured DDL, TRUNCATEs) sent to the DDL topic.
    pub schema_changes: Counter,
    up: Gauge,
    sources: std::sync::Mutex<Option<(Arc<SourceStats>, Arc<CheckpointTracker>)>>,
}

impl std::fmt::Debug for PipelineMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineMetrics").finish_non_exhaustive()
    }
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("weir");
        let rows_in = Family::<StageTableLabels, Counter>::default();
        let rows_out = Family::<StageTableLabels, Counter>::default();
        let batches = Family::<TableLabel, Counter>::default();
        let bytes = Family::<TableLabel, Counter>::default();
        let plugin_seconds = Family::<StageLabel, Counter<f64, AtomicU64>>::default();
        let plugin_errors = Family::<StageLabel, Counter>::default();
        let dead_letters = Counter::default();
        let encode_seconds = Counter::<f64, AtomicU64>::default();
        // 0.5 ms to about 65 s.
        let produce_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 18));
        // 1 ms to about 2 min in steps of 25%, fine enough for p99s.
        let commit_to_ack = Histogram::new(exponential_buckets(0.001, 1.25, 53));
        // 0.5 ms to about 65 s.
        let kafka_commit = Histogram::new(exponential_buckets(0.0005, 2.0, 18));
        let transactions = Counter::default();
        let snapshot_rows = Family::<TableLabel, Gauge>::default();
        let snapshot_rows_estimated = Family::<TableLabel, Gauge>::default();
        let in_flight = Gauge::default();
        let lag_bytes = Gauge::default();
        let lag_seconds = Gauge::<f64, AtomicU64>::default();
        let flush_lsn = Gauge::default();
        let streaming = Gauge::default();
        let slot_retained = Gauge::default();
        let slot_safe = Gauge::default();
        let slot_limit = Gauge::default();
        let truncates_skipped = Counter::default();
        let schema_changes = Counter::default();
        let up = Gauge::default();
        registry.register(
            "rows_in",
            "Rows into a stage (source, a plugin stage, sink)",
            rows_in.clone(),
        );
        registry.register(
            "rows_out",
            "Rows out of a stage (source, a plugin stage, sink)",
            rows_out.clone(),
        );
        registry.register(
            "source_batches",
            "ChangeBatches read from the source",
            batches.clone(),
        );
        registry.register(
            "sink_bytes",
            "Bytes of message keys and values produced",
            bytes.clone(),
        );
        registry.register(
            "plugin_seconds",
            "Seconds spent in a plugin stage",
            plugin_seconds.clone(),
        );
        registry.register(
            "plugin_errors",
            "Failed plugin calls",
            plugin_errors.clone(),
        );
        registry.register(
            "dead_letters",
            "Rows sent to the dead-letter topic",
            dead_letters.clone(),
        );
        registry.register(
            "encode_seconds",
            "Seconds spent encoding messages",
            encode_seconds.clone(),
        );
        registry.register(
            "produce_latency_seconds",
            "Time from handing a message to the producer to Kafka's acknowledgement",
            produce_latency.clone(),
        );
        registry.register(
            "commit_to_ack_seconds",
            "Time from the transaction's commit in PostgreSQL to Kafka's acknowledgement",
            commit_to_ack.clone(),
        );
        registry.register(
            "kafka_commit_seconds",
            "Exactly-once: time to commit a Kafka transaction, its messages' acknowledgements included",
            kafka_commit.clone(),
        );
        registry.register(
            "transactions",
            "Transactions committed through the pipeline",
            transactions.clone(),
        );
        registry.register(
            "snapshot_rows",
            "Snapshot rows of a table acknowledged by Kafka",
            snapshot_rows.clone(),
        );
        registry.register(
            "snapshot_rows_estimated",
            "The planner's estimate of a table's rows, when its snapshot started",
            snapshot_rows_estimated.clone(),
        );
        registry.register(
            "messages_in_flight",
            "Messages sent and not yet acknowledged",
            in_flight.clone(),
        );
        registry.register(
            "replication_lag_bytes",
            "WAL bytes between the server's position and the confirmed one",
            lag_bytes.clone(),
        );
        registry.register(
            "replication_lag_seconds",
            "Age of the newest commit or heartbeat received from PostgreSQL",
            lag_seconds.clone(),
        );
        registry.register(
            "flush_lsn",
            "The position confirmed to PostgreSQL, as a number",
            flush_lsn.clone(),
        );
        registry.register(
            "source_streaming",
            "1 while a replication session streams from the slot, 0 while weir reconnects",
            streaming.clone(),
        );
        registry.register(
            "slot_retained_wal_bytes",
            "WAL the replication slot holds on the server, looked at every 15 s",
            slot_retained.clone(),
        );
        registry.register(
            "slot_safe_wal_bytes",
            "WAL the server may write before the slot is invalidated (safe_wal_size); -1 without a limit",
            slot_safe.clone(),
        );
        registry.register(
            "slot_wal_limit_bytes",
            "max_slot_wal_keep_size in bytes; -1 when unlimited",
            slot_limit.clone(),
        );
        registry.register(
            "truncates_skipped",
            "TRUNCATEs of a table left out, as sink.kafka.skipped_operations asks",
            truncates_skipped.clone(),
        );
        registry.register(
            "schema_changes",
            "Captured DDL statements and TRUNCATEs sent to the DDL topic",
            schema_changes.clone(),
        );
        registry.register(
            "up",
            "1 while the pipeline runs without a failure",
            up.clone(),
        );
        Self {
            registry,
            rows_in,
            rows_out,
            batches,
            bytes,
            plugin_seconds,
            plugin_errors,
            dead_letters,
            encode_seconds,
            produce_latency,
            commit_to_ack,
            kafka_commit,
            transactions,
            snapshot_rows,
            snapshot_rows_estimated,
            in_flight,
            lag_bytes,
            lag_seconds,
            flush_lsn,
            streaming,
            slot_retained,
            slot_safe,
            slot_limit,
            truncates_skipped,
            schema_changes,
            up,
            sources: std::sync::Mutex::new(None),
        }
    }
}

impl PipelineMetrics {
    /// Where the scrape-time gauges read from.
    pub fn attach(&self, source: Arc<SourceStats>, tracker: Arc<CheckpointTracker>) {
        if let Ok(mut sources) = self.sources.lock() {
            *sources = Some((source, tracker));
        }
        self.up.set(1);
    }

    /// The pipeline failed or stopped.
    pub fn down(&self) {
        self.up.set(0);
    }

    /// Whether the pipeline runs without a failure.
    pub fn is_up(&self) -> bool {
        self.up.get() == 1
            && self
                .sources
                .lock()
                .ok()
                .and_then(|s| s.as_ref().map(|(_, tracker)| tracker.error().is_none()))
                .unwrap_or(false)
    }

    /// Rows through `stage` for `table`.
    pub fn stage_rows(&self, stage: &str, table: &str, rows_in: usize, rows_out: usize) {
        let labels = StageTableLabels {
            stage: stage.to_owned(),
            table: table.to_owned(),
        };
        self.rows_in.get_or_create(&labels).inc_by(rows_in as u64);
        self.rows_out.get_or_create(&labels).inc_by(rows_out as u64);
    }

    /// A plugin stage's call.
    pub fn plugin_call(&self, stage: &str, elapsed: Duration, failed: bool) {
        let label = StageLabel {
            stage: stage.to_owned(),
        };
        self.plugin_seconds
            .get_or_create(&label)
            .inc_by(elapsed.as_secs_f64());
        if failed {
            self.plugin_errors.get_or_create(&label).inc();
        }
    }

    /// The exposition text, gauges read now.
    pub fn render(&self) -> String {
        if let Ok(sources) = self.sources.lock()
            && let Some((source, tracker)) = sources.as_ref()
        {
            self.in_flight
                .set(i64::try_from(tracker.in_flight()).unwrap_or(i64::MAX));
            self.lag_bytes
                .set(i64::try_from(source.lag_bytes()).unwrap_or(i64::MAX));
            self.lag_seconds.set(source.lag_seconds().unwrap_or(0.0));
            self.flush_lsn
                .set(i64::try_from(tracker.flushed().0).unwrap_or(i64::MAX));
            self.streaming
                .set(i64::from(source.streaming.load(Ordering::Relaxed)));
            self.slot_retained.set(
                i64::try_from(source.slot_retained_wal_bytes.load(Ordering::Relaxed))
                    .unwrap_or(i64::MAX),
            );
            self.slot_safe
                .set(source.slot_safe_wal_bytes.load(Ordering::Relaxed));
            self.slot_limit
                .set(source.slot_wal_limit_bytes.load(Ordering::Relaxed));
            let skipped = source.truncates_skipped.load(Ordering::Relaxed);
            let counted = self.truncates_skipped.get();
            if skipped > counted {
                self.truncates_skipped.inc_by(skipped - counted);
            }
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
