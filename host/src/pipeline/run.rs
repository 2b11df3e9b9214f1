//! Running a pipeline: the source on the async runtime, the rest on one blocking
//! worker thread, the checkpoint tracker between them.
//!
//! ```text
//! PostgresSource ──events──▶ worker: plugins → encoder → router → producer ──▶ Kafka
//!       ▲                                                             │
//!       └──────── flush LSN (watch) ◀── CheckpointTracker ◀── acks ───┘
//! ```
//!
//! The worker is a plain thread because plugin calls block (wasmtime's synchronous
//! WASI) and so does the producer when its queue is full: that wait is the
//! backpressure that stops weir reading WAL while Kafka is slow or away. The bounded
//! event channel and librdkafka's bounded queue keep memory bounded.
//!
//! Shutdown: the source stops first (emitting what it holds), the worker drains the
//! channel and waits for every acknowledgement, and the final flush position is
//! confirmed on the then idle slot, so a clean stop neither loses nor repeats data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arrow::array::{AsArray, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{UInt8Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, info_span, warn};

use super::build::PipelineConfig;
use super::side_topics::{Heartbeat, Outlet, TransactionTopic};
use super::snapshot::SnapshotRecorder;
use super::state::StateTopic;
use super::throttle::RateLimiter;
use crate::Lsn;
use crate::batch::schema::{COMMIT_LSN, OP, op, qualified_table_name};
use crate::checkpoint::CheckpointTracker;
use crate::encode::{Encoder, Messages, MetadataEncoder};
use crate::metrics::server::{self, Endpoint};
use crate::metrics::{PipelineMetrics, TableLabel};
use crate::plugin::{PluginChain, PluginEngine};
use crate::sink::admin::TopicAdmin;
use crate::sink::{DeadLetterProducer, KafkaProducer, Latency, Router};
use crate::source::snapshot::{SharedProgress, SnapshotEvent, SnapshotMode};
use crate::source::{PostgresSource, SourceError, SourceEvent};

/// Events buffered between the source and the worker: with batches of up to 8k
/// rows this bounds the rows held in memory to a few tens of thousands.
const EVENT_BUFFER: usize = 8;
/// What a failed delivery means for the user.
const UNDELIVERED: &str = "a message could not be delivered (Kafka refused it, or stayed \
     unreachable longer than sink.kafka.retry_window); nothing after the last \
     acknowledged transaction was confirmed";

/// How long the worker waits for an event before it checks the tracker again.
const IDLE_CHECK: Duration = Duration::from_millis(500);

/// Counters of a run.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Replication sessions that started streaming.
    pub sessions: AtomicU64,
    /// Rows received from the source.
    pub rows_in: AtomicU64,
    /// Rows that left the plugin chain.
    pub rows_out: AtomicU64,
    /// Messages handed to the producer.
    pub messages: AtomicU64,
    /// Rows sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Transactions committed.
    pub transactions: AtomicU64,
    /// The Prometheus metrics.
    pub metrics: Arc<PipelineMetrics>,
    /// Set once the source streams.
    pub ready: Arc<AtomicBool>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// The position confirmed to PostgreSQL at the end.
    pub flushed: Lsn,
}

/// Runs `config` until `shutdown` is cancelled or something fails for good.
pub async fn run(
    config: PipelineConfig,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<RunSummary> {
    let span = info_span!("pipeline", pipeline = %config.name);
    run_pipeline(config, stats, shutdown).instrument(span).await
}

async fn run_pipeline(
    config: PipelineConfig,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<RunSummary> {
    let engine = PluginEngine::with_default_cache().context("starting the plugin engine")?;
    let stages = config.stages.clone();
    let chain = tokio::task::spawn_blocking(move || PluginChain::new(&engine, stages))
        .await
        .context("loading plugins")?
        .context("loading plugins")?;
    let tracker = Arc::new(CheckpointTracker::new(Lsn::ZERO));
    let producer = KafkaProducer::with_latency(
        &config.producer,
        Arc::clone(&tracker),
        Some(Latency {
            produce: stats.metrics.produce_latency.clone(),
            commit_to_ack: stats.metrics.commit_to_ack.clone(),
        }),
    )
    .context("creating the Kafka producer")?;
    let topics = TopicAdmin::new(
        &config.producer.brokers,
        &config.producer.properties,
        config.create_topics,
    )
    .context("creating the Kafka admin client")?
    .with_retry_window(
        (!config.producer.delivery_timeout.is_zero()).then_some(config.producer.delivery_timeout),
    )
    .with_stop(shutdown.clone(), config.shutdown_timeout);
    let dead_letters = if chain
        .stages()
        .iter()
        .any(|s| s.spec().on_error == crate::plugin::OnError::DeadLetter)
    {
        Some(
            DeadLetterProducer::new(
                &config.producer.brokers,
                config.dead_letter_topic.clone(),
                &config.producer.properties,
            )
            .context("creating the dead-letter producer")?,
        )
    } else {
        None
    };
    let encoder = config
        .format
        .encoder(&config.database, &config.router)
        .context("creating the encoder")?;
    let snapshots = config.source.snapshot.mode != SnapshotMode::Never;
    let topics = if snapshots {
        prepare_state_topic(&config, topics).await?
    } else {
        topics
    };
    // Filled from the state topic by the source, once it owns the slot.
    let progress = SharedProgress::default();

    let (events_tx, events_rx) = mpsc::channel(EVENT_BUFFER);
    let source_stop = shutdown.child_token();
    let mut source = PostgresSource::new(config.source.clone()).with_progress(progress.clone());
    if snapshots {
        let state = StateTopic::new(config.state_topic.clone(), &config.source.slot);
        let brokers = config.producer.brokers.clone();
        let properties = config.producer.properties.clone();
        source = source.with_progress_loader(Arc::new(move || {
            state
                .load(&brokers, &properties, Duration::from_secs(60))
                .map_err(|e| e.to_string())
        }));
    }
    stats.metrics.attach(source.stats(), Arc::clone(&tracker));
    if let Some(address) = config.metrics_listen {
        let endpoint = Endpoint {
            metrics: Arc::clone(&stats.metrics),
            ready: Arc::clone(&stats.ready),
        };
        server::serve(address, endpoint, shutdown.child_token())
            .await
            .with_context(|| format!("serving metrics on {address}"))?;
    }
    let flushed = tracker.subscribe();
    let source_task = tokio::spawn({
        let source_stop = source_stop.clone();
        async move { source.run(events_tx, flushed, source_stop).await }
    });

    let worker = Worker {
        chain,
        encoder,
        router: config.router.clone(),
        producer,
        topics,
        dead_letters,
        tracker: Arc::clone(&tracker),
        stats: Arc::clone(&stats),
        handle: Handle::current(),
        messages: Messages::default(),
        sessions: 0,
        transactions: config.transaction_topic.clone().map(TransactionTopic::new),
        heartbeat: config
            .heartbeat
            .clone()
            .map(|(topic, interval)| Heartbeat::new(topic, interval)),
        metadata: config
            .format
            .metadata_encoder(&config.name)
            .context("creating the metadata encoder")?,
        row_limit: config
            .throttle
            .rows_per_second
            .map(|rate| RateLimiter::new(rate as f64)),
        byte_limit: config.throttle.bytes_per_second.map(RateLimiter::new),
        snapshot_row_limit: config
            .snapshot_throttle
            .rows_per_second
            .map(|rate| RateLimiter::new(rate as f64)),
        snapshot_byte_limit: config
            .snapshot_throttle
            .bytes_per_second
            .map(RateLimiter::new),
        snapshot: snapshots.then(|| {
            SnapshotRecorder::new(
                StateTopic::new(config.state_topic.clone(), &config.source.slot),
                progress,
                Arc::clone(&stats.metrics),
            )
        }),
        shutdown_timeout: config.shutdown_timeout,
    };
    let worker_thread = std::thread::Builder::new()
        .name("weir-pipeline".into())
        .spawn(move || worker.run(events_rx))
        .context("starting the pipeline thread")?;

    // The worker ends when the source's channel closes or on a failure; a failure
    // stops the source, and a stopping source closes the channel.
    let worker_result = tokio::task::spawn_blocking(move || {
        worker_thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the pipeline thread panicked")))
    });
    let worker_result = {
        let source_stop = source_stop.clone();
        async move {
            let result = worker_result
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("joining the pipeline thread: {e}")));
            source_stop.cancel();
            result
        }
    };
    let (worker_result, source_result) = tokio::join!(worker_result, source_task);
    stats.metrics.down();
    stats.ready.store(false, Ordering::Relaxed);
    let source_result = source_result.context("the source task panicked")?;
    worker_result?;
    match source_result {
        Ok(()) => {}
        Err(SourceError::DownstreamClosed) => {}
        Err(error) => return Err(error).context("the PostgreSQL source failed"),
    }
    let flushed = tracker.flushed();
    confirm_final_position(&config, flushed).await;
    info!(%flushed, "pipeline stopped");
    Ok(RunSummary { flushed })
}

/// Makes sure the state topic exists (blocking Kafka calls, off the runtime).
async fn prepare_state_topic(
    config: &PipelineConfig,
    mut topics: TopicAdmin,
) -> anyhow::Result<TopicAdmin> {
    let state = StateTopic::new(config.state_topic.clone(), &config.source.slot);
    tokio::task::spawn_blocking(move || {
        topics
            .ensure_state_topic(state.topic())
            .context("preparing the state topic")?;
        anyhow::Ok(topics)
    })
    .await
    .context("preparing the state topic")?
}

/// After the source stopped, the last acknowledgements may have moved the flush LSN
/// past what the source reported: confirm it on the idle slot, so a restart does
/// not send those transactions again.
async fn confirm_final_position(config: &PipelineConfig, flushed: Lsn) {
    if flushed == Lsn::ZERO {
        return;
    }
    let result = async {
        let client = config.source.connection.connect_control().await?;
        client
            .execute(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn) \
                 FROM pg_replication_slots \
                 WHERE slot_name = $1 AND NOT active AND confirmed_flush_lsn < $2::text::pg_lsn",
                &[&config.source.slot, &flushed.to_string()],
            )
            .await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = result {
        warn!(%error, %flushed, "could not confirm the final position; the transactions after the slot's position will be sent again");
    }
}

/// The blocking half: plugins, encoding, routing, producing.
struct Worker {
    chain: PluginChain,
    encoder: Box<dyn Encoder>,
    router: Router,
    producer: KafkaProducer,
    topics: TopicAdmin,
    dead_letters: Option<DeadLetterProducer>,
    tracker: Arc<CheckpointTracker>,
    stats: Arc<PipelineStats>,
    handle: Handle,
    messages: Messages,
    sessions: u64,
    transactions: Option<TransactionTopic>,
    heartbeat: Option<Heartbeat>,
    metadata: MetadataEncoder,
    row_limit: Option<RateLimiter>,
    byte_limit: Option<RateLimiter>,
    snapshot_row_limit: Option<RateLimiter>,
    snapshot_byte_limit: Option<RateLimiter>,
    snapshot: Option<SnapshotRecorder>,
    shutdown_timeout: Duration,
}

impl Worker {
    fn run(mut self, mut events: mpsc::Receiver<SourceEvent>) -> anyhow::Result<()> {
        loop {
            if let Some(error) = self.tracker.error() {
                return Err(self.undelivered(error));
            }
            if let Some(heartbeat) = &mut self.heartbeat {
                heartbeat.send_if_due(&mut Outlet {
                    producer: &self.producer,
                    topics: &mut self.topics,
                    metadata: &mut self.metadata,
                })?;
            }
            let next = self
                .handle
                .block_on(async { tokio::time::timeout(IDLE_CHECK, events.recv()).await });
            match next {
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(event)) => self.handle(event)?,
            }
        }
        self.drain()
    }

    fn handle(&mut self, event: SourceEvent) -> anyhow::Result<()> {
        match event {
            SourceEvent::SessionStarted { start } => {
                if self.sessions > 0 {
                    // The stream rewinds to the slot's position: wait for what is in
                    // flight, then everything already confirmed is skipped below.
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
            SourceEvent::Batch(batch) => self.batch(batch)?,
            SourceEvent::Snapshot(event) => {
                if matches!(
                    event,
                    SnapshotEvent::ChunkRead(_) | SnapshotEvent::Finished { .. }
                ) {
                    // A chunk is done only once Kafka has every row of it.
                    self.wait_acknowledged()?;
                }
                if let Some(snapshot) = &mut self.snapshot {
                    snapshot.record(event, &self.producer)?;
                }
            }
            SourceEvent::Committed(transaction) => {
                if let Some(transactions) = &mut self.transactions {
                    transactions.end(
                        transaction.commit_lsn,
                        &mut Outlet {
                            producer: &self.producer,
                            topics: &mut self.topics,
                            metadata: &mut self.metadata,
                        },
                    )?;
                }
                self.tracker.committed(&transaction)?;
                self.stats.transactions.fetch_add(1, Ordering::Relaxed);
                if transaction.rows > 0 {
                    self.stats.metrics.transactions.inc();
                }
            }
        }
        Ok(())
    }

    fn batch(&mut self, batch: RecordBatch) -> anyhow::Result<()> {
        let Some(batch) = skip_confirmed(batch, self.tracker.flushed())? else {
            return Ok(());
        };
        self.stats
            .rows_in
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        let metrics = Arc::clone(&self.stats.metrics);
        let table = qualified_table_name(batch.schema_ref());
        let rows = batch.num_rows();
        metrics.stage_rows("source", &table, rows, rows);
        metrics
            .batches
            .get_or_create(&TableLabel {
                table: table.clone(),
            })
            .inc();
        let output =
            info_span!("plugins", stage = "plugins").in_scope(|| self.chain.process(batch))?;
        for run in &output.runs {
            let name = self.chain.stages()[run.stage].name();
            metrics.stage_rows(name, &table, run.rows_in, run.rows_out);
            metrics.plugin_call(name, run.elapsed, run.failed);
        }
        if let Some(letter) = output.dead_letter {
            let dead_letters = self
                .dead_letters
                .as_ref()
                .context("a stage dead-lettered without a dead-letter producer")?;
            let sent = self.handle.block_on(dead_letters.send(&letter))?;
            self.stats
                .dead_lettered
                .fetch_add(sent as u64, Ordering::Relaxed);
            metrics.dead_letters.inc_by(sent as u64);
        }
        let Some(batch) = output.batch else {
            return Ok(());
        };
        self.stats
            .rows_out
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        self.messages.clear();
        let encoding = Instant::now();
        info_span!("encode", stage = "encode")
            .in_scope(|| self.encoder.encode(&batch, &mut self.messages))?;
        metrics
            .encode_seconds
            .inc_by(encoding.elapsed().as_secs_f64());
        let destinations = info_span!("route", stage = "route").in_scope(|| {
            let failure = std::cell::RefCell::new(None);
            let topics = std::cell::RefCell::new(&mut self.topics);
            let partitions = |topic: &str| match topics.borrow_mut().partitions(topic) {
                Ok(count) => count,
                Err(error) => {
                    failure.borrow_mut().get_or_insert(error);
                    1
                }
            };
            let destinations = self.router.route(&batch, &self.messages, &partitions);
            match failure.into_inner() {
                Some(error) => Err(anyhow::Error::new(error)),
                None => destinations.map_err(anyhow::Error::new),
            }
        })?;
        let snapshot_rows = is_snapshot_batch(&batch);
        if let Some(transactions) = self.transactions.as_mut().filter(|_| !snapshot_rows) {
            transactions.begin(
                &batch,
                &table,
                &mut Outlet {
                    producer: &self.producer,
                    topics: &mut self.topics,
                    metadata: &mut self.metadata,
                },
            )?;
        }
        self.throttle(batch.num_rows(), self.messages.byte_len(), snapshot_rows);
        info_span!("produce", stage = "produce")
            .in_scope(|| self.producer.send(&batch, &self.messages, &destinations))?;
        self.stats
            .messages
            .fetch_add(self.messages.len() as u64, Ordering::Relaxed);
        if let Some(snapshot) = self.snapshot.as_mut().filter(|_| snapshot_rows) {
            snapshot.rows_sent(batch.num_rows());
        }
        metrics.stage_rows("sink", &table, batch.num_rows(), self.messages.len());
        metrics
            .bytes
            .get_or_create(&TableLabel { table })
            .inc_by(self.messages.byte_len() as u64);
        Ok(())
    }

    /// Sleeps off what the rate limits (the snapshot's, for snapshot rows) ask
    /// before `rows` rows of `bytes` bytes go.
    fn throttle(&mut self, rows: usize, bytes: usize, snapshot: bool) {
        let (row_limit, byte_limit) = if snapshot {
            (&mut self.snapshot_row_limit, &mut self.snapshot_byte_limit)
        } else {
            (&mut self.row_limit, &mut self.byte_limit)
        };
        let rows_wait = row_limit
            .as_mut()
            .map_or(Duration::ZERO, |l| l.take(rows as f64));
        let bytes_wait = byte_limit
            .as_mut()
            .map_or(Duration::ZERO, |l| l.take(bytes as f64));
        let wait = rows_wait.max(bytes_wait);
        if !wait.is_zero() {
            let _span =
                info_span!("throttle", stage = "throttle", wait_ms = wait.as_millis()).entered();
            std::thread::sleep(wait);
        }
    }

    /// Waits, however long Kafka takes within the messages' own retry window,
    /// until everything sent is acknowledged; fails if a delivery failed.
    ///
    /// Polls the count instead of calling librdkafka's flush, which checks only
    /// every 100 ms: after each snapshot chunk that would stall the pipeline.
    fn wait_acknowledged(&self) -> anyhow::Result<()> {
        loop {
            if let Some(error) = self.tracker.error() {
                return Err(self.undelivered(error));
            }
            if self.producer.in_flight() == 0 {
                return Ok(());
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// The error a failed delivery stops the pipeline with: the producer's fatal
    /// error first when there is one, since it is the cause the delivery reports
    /// ("purged") do not name.
    fn undelivered(&self, error: crate::checkpoint::CheckpointError) -> anyhow::Error {
        let error = anyhow::Error::new(error);
        match self.producer.fatal_error() {
            Some(fatal) => error.context(format!("the Kafka producer failed for good: {fatal}")),
            None => error,
        }
        .context(UNDELIVERED)
    }

    /// Waits until every queued message is acknowledged (or failed).
    fn drain(&self) -> anyhow::Result<()> {
        self.producer
            .flush(self.shutdown_timeout)
            .context("waiting for Kafka to acknowledge the outstanding messages")?;
        if let Some(error) = self.tracker.error() {
            return Err(self.undelivered(error));
        }
        Ok(())
    }
}

/// Whether `batch` holds snapshot reads (a batch is all snapshot or all streamed).
fn is_snapshot_batch(batch: &RecordBatch) -> bool {
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
fn skip_confirmed(batch: RecordBatch, flushed: Lsn) -> anyhow::Result<Option<RecordBatch>> {
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
