//! The blocking half of a pipeline: one thread that takes the source's events in
//! order and passes each batch through the stages (`stages.rs`) to the producer.
//!
//! A plain thread, because plugin calls block (wasmtime's synchronous WASI) and so
//! does the producer when its queue is full: that wait is the backpressure that
//! stops weir reading WAL while Kafka is slow or away.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use arrow::record_batch::RecordBatch;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tracing::{info, info_span};

use super::exactly_once::ExactlyOnce;
use super::run::PipelineStats;
use super::side_topics::{DdlTopic, Heartbeat, Outlet, TransactionTopic};
use super::snapshot::SnapshotRecorder;
use super::stages::{
    Encode, Plugins, Route, Throttling, count_source_batch, is_snapshot_batch, skip_confirmed,
};
use crate::checkpoint::{CheckpointError, CheckpointTracker};
use crate::contract::columns::qualified_table_name;
use crate::contract::{SchemaChange, SnapshotMarks};
use crate::encode::MetadataEncoder;
use crate::metrics::TableLabel;
use crate::produce::KafkaProducer;
use crate::source::SourceEvent;
use crate::source::snapshot::SnapshotEvent;

/// What a failed delivery means for the user.
const UNDELIVERED: &str = "a message could not be delivered (Kafka refused it, or stayed \
     unreachable longer than sink.kafka.retry_window); nothing after the last \
     acknowledged transaction was confirmed";

/// How long the worker waits for an event before it checks the tracker and the
/// heartbeat again.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// The stages and the producer, owned by the worker thread.
pub(super) struct Worker {
    pub(super) plugins: Plugins,
    pub(super) encode: Encode,
    pub(super) route: Route,
    pub(super) throttling: Throttling,
    pub(super) producer: KafkaProducer,
    pub(super) tracker: Arc<CheckpointTracker>,
    pub(super) stats: Arc<PipelineStats>,
    pub(super) handle: Handle,
    pub(super) transactions: Option<TransactionTopic>,
    pub(super) heartbeat: Option<Heartbeat>,
    /// The DDL topic (`source.postgres.ddl: capture`).
    pub(super) ddl: Option<DdlTopic>,
    pub(super) metadata: MetadataEncoder,
    pub(super) snapshot: Option<SnapshotRecorder>,
    /// Exactly-once's bookkeeping; `None`: at-least-once.
    pub(super) exactly_once: Option<ExactlyOnce>,
    pub(super) shutdown_timeout: Duration,
    /// Replication sessions seen; a second one means the stream rewound.
    pub(super) sessions: u64,
}

impl Worker {
    /// Handles events until the source closes the channel, then waits for every
    /// acknowledgement.
    pub(super) fn run(mut self, mut events: mpsc::Receiver<SourceEvent>) -> anyhow::Result<()> {
        loop {
            if let Some(error) = self.tracker.error() {
                return Err(self.undelivered(error));
            }
            if let Some(heartbeat) = &mut self.heartbeat {
                heartbeat.send_if_due(&mut Outlet {
                    producer: &self.producer,
                    topics: self.route.topics(),
                    metadata: &mut self.metadata,
                })?;
            }
            if let Some(once) = self.exactly_once.as_mut()
                && once.due(&self.producer)
            {
                once.commit(&self.producer, &self.tracker)?;
            }
            // An event already waiting is taken without a timer; only an empty
            // channel arms one (a timer per event was a cost on the hot path).
            let next = match events.try_recv() {
                Ok(event) => Some(event),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => {
                    let waited = self
                        .handle
                        .block_on(async { tokio::time::timeout(IDLE_CHECK, events.recv()).await });
                    match waited {
                        Err(_) => continue,
                        Ok(event) => event,
                    }
                }
            };
            match next {
                None => break,
                Some(event) => self.handle(event)?,
            }
        }
        self.drain()
    }

    fn handle(&mut self, event: SourceEvent) -> anyhow::Result<()> {
        match event {
            SourceEvent::SessionStarted { start } => {
                if self.sessions > 0 {
                    // The stream rewinds to the slot's position: wait for what is in
                    // flight (with exactly-once, commit it), then everything already
                    // confirmed is skipped.
                    self.drain()?;
                    // Transactions not confirmed come again from their start: they
                    // get a new BEGIN and fresh counts.
                    if let Some(transactions) = &mut self.transactions {
                        transactions.rewind(self.tracker.flushed());
                    }
                }
                self.sessions += 1;
                self.stats.sessions.fetch_add(1, Ordering::Relaxed);
                self.stats.ready.store(true, Ordering::Relaxed);
                info!(%start, "streaming");
            }
            SourceEvent::Batch(batch) => self.batch(batch, SnapshotMarks::default())?,
            SourceEvent::Reads { batch, marks } => self.batch(batch, marks)?,
            SourceEvent::Snapshot(event) => {
                if matches!(
                    event,
                    SnapshotEvent::ChunkRead(_) | SnapshotEvent::Finished { .. }
                ) {
                    // A chunk is done only once Kafka has every row of it.
                    self.tracker
                        .wait_idle()
                        .map_err(|error| self.undelivered(error))?;
                }
                let chunk_done = matches!(
                    event,
                    SnapshotEvent::ChunkRead(_) | SnapshotEvent::Finished { .. }
                );
                if let Some(snapshot) = &mut self.snapshot {
                    snapshot.record(event, &self.producer)?;
                }
                if let Some(once) = self.exactly_once.as_mut().filter(|_| chunk_done) {
                    // The chunk's rows and its progress record commit together.
                    once.chunk_read();
                    once.commit(&self.producer, &self.tracker)?;
                }
            }
            SourceEvent::SchemaChange(change) => self.schema_change(&change)?,
            SourceEvent::Committed(transaction) => {
                if let Some(transactions) = &mut self.transactions {
                    transactions.end(
                        transaction.commit_lsn,
                        &mut Outlet {
                            producer: &self.producer,
                            topics: self.route.topics(),
                            metadata: &mut self.metadata,
                        },
                    )?;
                }
                self.tracker.committed(&transaction)?;
                if let Some(once) = &mut self.exactly_once {
                    once.committed(&transaction);
                }
                self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                if transaction.rows > 0 {
                    self.stats.metrics.transactions.inc();
                }
            }
        }
        Ok(())
    }

    /// A schema change: the encoder notes it, and it goes to the DDL topic
    /// unless a rewound stream brings it again after its transaction was
    /// confirmed.
    fn schema_change(&mut self, change: &SchemaChange) -> anyhow::Result<()> {
        self.encode.schema_change(change);
        let Some(ddl) = &mut self.ddl else {
            return Ok(());
        };
        if change.commit_lsn < self.tracker.flushed() {
            return Ok(());
        }
        let _span = info_span!("ddl", stage = "produce", table = %change.table_name()).entered();
        ddl.send(
            change,
            &mut Outlet {
                producer: &self.producer,
                topics: self.route.topics(),
                metadata: &mut self.metadata,
            },
        )?;
        self.stats.metrics.schema_changes.inc();
        Ok(())
    }

    /// One batch through the stages to the producer.
    fn batch(&mut self, batch: RecordBatch, marks: SnapshotMarks) -> anyhow::Result<()> {
        let Some(batch) = skip_confirmed(batch, self.tracker.flushed())? else {
            return Ok(());
        };
        let table = qualified_table_name(batch.schema_ref());
        let batch = match &mut self.exactly_once {
            Some(once) if !is_snapshot_batch(&batch) => {
                let Some(batch) = once.skip_sent(batch, &table)? else {
                    return Ok(());
                };
                once.sent(&batch, &table)?;
                batch
            }
            Some(once) if !marks.incremental => {
                once.reads_sent();
                batch
            }
            _ => batch,
        };
        count_source_batch(&self.stats, &table, batch.num_rows());
        let Some(batch) = self.plugins.process(batch, &table, &self.producer)? else {
            return Ok(());
        };
        let messages = self.encode.encode(&batch, marks)?;
        let destinations = self.route.route(&batch, messages)?;
        let snapshot_rows = is_snapshot_batch(&batch);
        if let Some(transactions) = self.transactions.as_mut().filter(|_| !snapshot_rows) {
            transactions.begin(
                &batch,
                messages,
                &table,
                &mut Outlet {
                    producer: &self.producer,
                    topics: self.route.topics(),
                    metadata: &mut self.metadata,
                },
            )?;
        }
        self.throttling
            .wait(batch.num_rows(), messages.byte_len(), snapshot_rows);
        info_span!("produce", stage = "produce")
            .in_scope(|| self.producer.send(&batch, messages, &destinations))?;
        self.stats
            .messages
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        if let Some(snapshot) = self.snapshot.as_mut().filter(|_| snapshot_rows) {
            snapshot.rows_sent(batch.num_rows());
        }
        let metrics = &self.stats.metrics;
        metrics.stage_rows("sink", &table, batch.num_rows(), messages.len());
        metrics
            .bytes
            .get_or_create(&TableLabel { table })
            .inc_by(messages.byte_len() as u64);
        Ok(())
    }

    /// The error a failed delivery stops the pipeline with: the producer's fatal
    /// error first when there is one, since it is the cause the delivery reports
    /// ("purged") do not name.
    fn undelivered(&self, error: CheckpointError) -> anyhow::Error {
        if let Some(fenced) = self.producer.fenced() {
            // Not a delivery problem: this weir must stop for good.
            return anyhow::Error::new(error).context(fenced.to_string());
        }
        let error = anyhow::Error::new(error);
        match self.producer.fatal_error() {
            Some(fatal) => error.context(format!("the Kafka producer failed for good: {fatal}")),
            None => error,
        }
        .context(UNDELIVERED)
    }

    /// Waits until every queued message is acknowledged (or failed); with
    /// exactly-once, commits the open Kafka transaction (or aborts a half-sent
    /// snapshot chunk).
    fn drain(&mut self) -> anyhow::Result<()> {
        if let Some(once) = &mut self.exactly_once {
            once.close(&self.producer, &self.tracker)?;
        }
        self.producer
            .flush(self.shutdown_timeout)
            .context("waiting for Kafka to acknowledge the outstanding messages")?;
        if let Some(error) = self.tracker.error() {
            return Err(self.undelivered(error));
        }
        Ok(())
    }
}
