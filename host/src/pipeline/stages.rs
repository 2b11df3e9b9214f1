//! The worker's stages, one job each, in the order a batch meets them: skip what
//! is already confirmed, run the plugins, encode, route, throttle. Producing and
//! the side topics are the worker's own (`worker.rs`), since every stage's output
//! meets there. Each stage keeps its own metrics and opens its own span.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arrow::array::{AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{UInt8Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use tokio::runtime::Handle;
use tracing::info_span;

use super::dead_letter::{self, DeadLetterProducer};
use super::run::PipelineStats;
use super::throttle::RateLimiter;
use crate::Lsn;
use crate::config::Throttle;
use crate::contract::columns::{COMMIT_LSN, OP, op};
use crate::contract::{Destination, Messages, SnapshotMarks};
use crate::encode::Encoder;
use crate::metrics::{PipelineMetrics, TableLabel};
use crate::plugin::{OnError, PluginChain};
use crate::produce::KafkaProducer;
use crate::produce::admin::TopicAdmin;
use crate::route::{RouteError, Router};

/// Counts a batch as it arrives from the source.
pub(super) fn count_source_batch(stats: &PipelineStats, table: &str, rows: usize) {
    stats.rows_in.fetch_add(rows as u64, Ordering::Relaxed);
    stats.metrics.stage_rows("source", table, rows, rows);
    stats
        .metrics
        .batches
        .get_or_create(&TableLabel {
            table: table.to_owned(),
        })
        .inc();
}

/// Where dead letters go.
pub(super) enum DeadLetters {
    /// A producer of their own; each is acknowledged before its batch goes on.
    Own(DeadLetterProducer),
    /// Exactly-once: this topic, in the pipeline's open Kafka transaction, which
    /// commits them with the batch's other messages.
    InTransaction {
        /// The dead-letter topic.
        topic: String,
    },
}

/// The plugin chain, and where its dead letters go.
pub(super) struct Plugins {
    chain: PluginChain,
    dead_letters: Option<DeadLetters>,
    handle: Handle,
    stats: Arc<PipelineStats>,
}

impl Plugins {
    pub(super) fn new(
        chain: PluginChain,
        dead_letters: Option<DeadLetters>,
        handle: Handle,
        stats: Arc<PipelineStats>,
    ) -> Self {
        Self {
            chain,
            dead_letters,
            handle,
            stats,
        }
    }

    /// Whether a stage may dead-letter, so a dead-letter producer is needed.
    pub(super) fn needs_dead_letters(chain: &PluginChain) -> bool {
        chain
            .stages()
            .iter()
            .any(|stage| stage.spec().on_error == OnError::DeadLetter)
    }

    /// Runs the chain on `batch`. Dead letters are delivered (acknowledged) before
    /// this returns, so their rows count as handled, or, with exactly-once, sent in
    /// `producer`'s open Kafka transaction. `None`: no row survived.
    pub(super) fn process(
        &mut self,
        batch: RecordBatch,
        table: &str,
        producer: &KafkaProducer,
    ) -> anyhow::Result<Option<RecordBatch>> {
        let _span = info_span!("plugins", stage = "plugins").entered();
        let metrics = &self.stats.metrics;
        let output = self.chain.process(batch)?;
        for run in &output.runs {
            let name = self.chain.stages()[run.stage].name();
            metrics.stage_rows(name, table, run.rows_in, run.rows_out);
            metrics.plugin_call(name, run.elapsed, run.failed);
        }
        if let Some(letter) = output.dead_letter {
            let dead_letters = self
                .dead_letters
                .as_ref()
                .context("a stage dead-lettered without a dead-letter producer")?;
            let sent = match dead_letters {
                DeadLetters::Own(own) => self.handle.block_on(own.send(&letter))?,
                DeadLetters::InTransaction { topic } => {
                    let messages = dead_letter::messages(&letter)?;
                    for message in &messages {
                        producer.send_message(
                            topic,
                            None,
                            message.key.as_deref(),
                            &message.value,
                            Some(message.headers.clone()),
                            None,
                        )?;
                    }
                    messages.len()
                }
            } as u64;
            self.stats.dead_lettered.fetch_add(sent, Ordering::Relaxed);
            metrics.dead_letters.inc_by(sent);
        }
        if let Some(batch) = &output.batch {
            self.stats
                .rows_out
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        }
        Ok(output.batch)
    }
}

/// The encoder and the buffer its messages are written into, reused batch after
/// batch.
pub(super) struct Encode {
    encoder: Box<dyn Encoder>,
    messages: Messages,
    metrics: Arc<PipelineMetrics>,
}

impl Encode {
    pub(super) fn new(encoder: Box<dyn Encoder>, metrics: Arc<PipelineMetrics>) -> Self {
        Self {
            encoder,
            messages: Messages::default(),
            metrics,
        }
    }

    /// The messages of `batch`, valid until the next call.
    pub(super) fn encode(
        &mut self,
        batch: &RecordBatch,
        marks: SnapshotMarks,
    ) -> anyhow::Result<&Messages> {
        let _span = info_span!("encode", stage = "encode").entered();
        let started = Instant::now();
        self.messages.clear();
        self.encoder.encode(batch, marks, &mut self.messages)?;
        self.metrics
            .encode_seconds
            .inc_by(started.elapsed().as_secs_f64());
        Ok(&self.messages)
    }

    /// Tells the encoder of a schema change before the rows written under it.
    pub(super) fn schema_change(&mut self, change: &crate::contract::SchemaChange) {
        self.encoder.schema_change(change);
    }
}

/// Topics and partitions, with partition counts from the brokers' metadata.
pub(super) struct Route {
    router: Router,
    topics: TopicAdmin,
}

impl Route {
    pub(super) fn new(router: Router, topics: TopicAdmin) -> Self {
        Self { router, topics }
    }

    /// Where each message of `batch` goes. A topic that is missing is created
    /// first when the spec allows it, else routing fails naming it.
    pub(super) fn route(
        &mut self,
        batch: &RecordBatch,
        messages: &Messages,
    ) -> Result<Vec<Destination>, RouteError> {
        let _span = info_span!("route", stage = "route").entered();
        let topics = &mut self.topics;
        self.router.route(batch, messages, &mut |topic| {
            topics.partitions(topic).map_err(|error| error.into())
        })
    }

    /// The admin client, lent to the side topics.
    pub(super) fn topics(&mut self) -> &mut TopicAdmin {
        &mut self.topics
    }
}

/// The rate limits: streaming's, and the snapshot's for snapshot rows.
pub(super) struct Throttling {
    streaming: Limits,
    snapshot: Limits,
}

/// The token buckets of one [`Throttle`].
struct Limits {
    rows: Option<RateLimiter>,
    bytes: Option<RateLimiter>,
}

impl Limits {
    fn new(throttle: Throttle) -> Self {
        Self {
            rows: throttle
                .rows_per_second
                .map(|rate| RateLimiter::new(rate as f64)),
            bytes: throttle.bytes_per_second.map(RateLimiter::new),
        }
    }
}

impl Throttling {
    pub(super) fn new(streaming: Throttle, snapshot: Throttle) -> Self {
        Self {
            streaming: Limits::new(streaming),
            snapshot: Limits::new(snapshot),
        }
    }

    /// Sleeps off what the limits ask before `rows` rows of `bytes` bytes go. The
    /// sleep is backpressure: the source waits on the full channel meanwhile.
    pub(super) fn wait(&mut self, rows: usize, bytes: usize, snapshot: bool) {
        let limits = if snapshot {
            &mut self.snapshot
        } else {
            &mut self.streaming
        };
        let rows_wait = limits
            .rows
            .as_mut()
            .map_or(Duration::ZERO, |limit| limit.take(rows as f64));
        let bytes_wait = limits
            .bytes
            .as_mut()
            .map_or(Duration::ZERO, |limit| limit.take(bytes as f64));
        let wait = rows_wait.max(bytes_wait);
        if !wait.is_zero() {
            let _span =
                info_span!("throttle", stage = "throttle", wait_ms = wait.as_millis()).entered();
            std::thread::sleep(wait);
        }
    }
}

/// Whether `batch` holds snapshot reads (a batch is all snapshot or all streamed).
pub(super) fn is_snapshot_batch(batch: &RecordBatch) -> bool {
    batch
        .column_by_name(OP)
        .and_then(|c| c.as_primitive_opt::<UInt8Type>())
        .is_some_and(|ops| !ops.is_empty() && ops.value(0) == op::READ)
}

/// Drops the rows of transactions already confirmed: after a reconnect the source
/// replays from the slot's position, which may trail what Kafka already has.
///
/// Confirmed means the commit record starts *before* the flush position, as
/// PostgreSQL itself decides what to send again: a confirmed position is the end
/// of a commit record (or a keepalive's end of WAL), and the next transaction's
/// commit record may start exactly there. Such a transaction is new.
pub(super) fn skip_confirmed(
    batch: RecordBatch,
    flushed: Lsn,
) -> anyhow::Result<Option<RecordBatch>> {
    let commit_lsns = batch
        .column_by_name(COMMIT_LSN)
        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
        .context("a source batch without _commit_lsn")?;
    if commit_lsns.values().iter().all(|lsn| *lsn >= flushed.0) {
        return Ok(Some(batch));
    }
    let keep: BooleanArray = commit_lsns
        .values()
        .iter()
        .map(|lsn| Some(*lsn >= flushed.0))
        .collect();
    let kept = filter_record_batch(&batch, &keep)?;
    Ok((kept.num_rows() > 0).then_some(kept))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::UInt64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn a_commit_at_the_flush_position_is_kept_and_earlier_ones_dropped() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            COMMIT_LSN,
            DataType::UInt64,
            false,
        )]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(UInt64Array::from(vec![100, 208, 300]))],
        )
        .expect("batch");
        let kept = skip_confirmed(batch, Lsn(208))
            .expect("filtered")
            .expect("rows left");
        let lsns = kept
            .column(0)
            .as_primitive::<UInt64Type>()
            .values()
            .to_vec();
        assert_eq!(lsns, vec![208, 300]);
    }
}
