//! The PostgreSQL source stage: a replication session that emits ChangeBatches.
//!
//! [`PostgresSource::run`] keeps one session alive: it makes sure the publication and
//! the slot exist, streams the slot, decodes and batches, and sends
//! [`SourceEvent`]s down a bounded channel. When that channel is full it stops reading
//! WAL: backpressure reaches PostgreSQL instead of growing memory.
//!
//! The position it confirms to PostgreSQL comes only from the `flushed` watch channel,
//! which the checkpoint tracker moves when Kafka acknowledged every message of a
//! transaction and of all earlier ones. The server keeps everything after that
//! position, so a restart, a crash or a standby taking over resumes there and loses
//! nothing; transactions emitted but not yet confirmed come again (at-least-once).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, info_span, warn};

use super::batcher::{
    BatchLimits, BatcherError, BatcherOutput, ChangeBatcher, CommittedTransaction,
};
use super::catalog::{
    CatalogError, PublicationState, SlotState, ensure_publication, ensure_slot, primary_keys,
    resolve_tables,
};
use super::connect::{ConnectError, PgConnectOptions};
use super::pgoutput::{DecodeError, PgOutputDecoder, PgOutputMessage};
use super::replication::{
    PgOutputOptions, ReplicationConnection, ReplicationError, ReplicationEvent, ReplicationStream,
    SlotSnapshot, StandbyStatus, now_unix_micros,
};
use super::snapshot::incremental::{
    IncrementalSnapshot, SIGNAL_PREFIX, WATERMARK_PREFIX, Watermark,
};
use super::snapshot::initial::{InitialSnapshot, SnapshotEvent, SnapshotOptions};
use super::snapshot::parallel::{ChunkRead, export_snapshot};
use super::snapshot::progress::{SnapshotMode, SnapshotProgress, lock};
use super::snapshot::table::SnapshotError;
use crate::contract::TableSelector;
use crate::lsn::Lsn;

/// Default time a pending row may wait for its batch to fill: short, because commit
/// markers (and so acknowledgements) wait for it too.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(20);
/// Default longest interval between standby status updates; PostgreSQL's default
/// `wal_sender_timeout` is 60 s.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(10);
/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Prefix of weir's heartbeat messages (`pg_logical_emit_message`).
pub const HEARTBEAT_PREFIX: &str = "weir_heartbeat";
/// How often a moved flush position is reported at most.
const STATUS_THROTTLE: Duration = Duration::from_millis(100);

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
        }
    }
}

/// What the source emits, in order.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// A replication session started streaming after `start`. After a reconnect the
    /// stream rewinds to the last confirmed position: transactions emitted but not
    /// confirmed before come again.
    SessionStarted {
        /// Changes committed after this position follow.
        start: Lsn,
    },
    /// Changes of one table.
    Batch(RecordBatch),
    /// Every change of this transaction, and of all earlier ones, was in an earlier
    /// `Batch`. A transaction without changes of the selected tables (or an idle
    /// stretch of WAL) appears with `rows == 0`; confirming it lets the slot advance.
    Committed(CommittedTransaction),
    /// Progress of the initial snapshot, whose rows come as `Batch`es with
    /// `_op = r`, all before the first streamed change, and end with a `Committed`
    /// just before the slot's start.
    Snapshot(SnapshotEvent),
}

impl From<RecordBatch> for SourceEvent {
    fn from(batch: RecordBatch) -> Self {
        SourceEvent::Batch(batch)
    }
}

impl From<ChunkRead> for SourceEvent {
    fn from(chunk: ChunkRead) -> Self {
        SourceEvent::Snapshot(SnapshotEvent::ChunkRead(chunk))
    }
}

impl From<SnapshotEvent> for SourceEvent {
    fn from(event: SnapshotEvent) -> Self {
        SourceEvent::Snapshot(event)
    }
}

/// Why the source stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The replication connection failed.
    #[error(transparent)]
    Replication(#[from] ReplicationError),
    /// The control-plane connection or a catalog operation failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// pgoutput sent something weir cannot decode.
    #[error("decoding the replication stream failed")]
    Decode(#[from] DecodeError),
    /// A change could not be batched.
    #[error(transparent)]
    Batch(#[from] BatcherError),
    /// Reading the initial snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The downstream stage is gone.
    #[error("the downstream stage stopped")]
    DownstreamClosed,
    /// Another weir holds the slot's lock (see `ownership`): it streams or
    /// snapshots the slot. Retried, so a standby takes over when it stops.
    #[error("slot {slot} belongs to another running weir; waiting for it to stop")]
    SlotOwned {
        /// The slot.
        slot: String,
    },
    /// The snapshot's progress could not be read (not retried: the progress
    /// loader has its own timeout).
    #[error("reading the snapshot's progress: {0}")]
    Progress(#[source] LoadError),
    /// Retrying did not help within the retry window.
    #[error("gave up after retrying for {after:?}")]
    RetriesExhausted {
        /// How long it kept failing.
        after: Duration,
        /// The last failure.
        #[source]
        last: Box<SourceError>,
    },
}

impl SourceError {
    /// Whether a new session may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Replication(error) => error.is_retryable(),
            SourceError::Catalog(CatalogError::Query(error))
            | SourceError::Catalog(CatalogError::Connect(ConnectError::Postgres(error))) => {
                control_error_is_retryable(error)
            }
            SourceError::Catalog(CatalogError::Replication(error)) => error.is_retryable(),
            SourceError::Snapshot(SnapshotError::Postgres { source, .. }) => {
                control_error_is_retryable(source)
            }
            SourceError::Snapshot(SnapshotError::Connect(_)) | SourceError::SlotOwned { .. } => {
                true
            }
            _ => false,
        }
    }
}

fn control_error_is_retryable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
        }
        // No SQLSTATE: the connection itself failed (refused, reset, timed out).
        None => true,
    }
}

pub use crate::metrics::SourceStats;

/// The PostgreSQL source stage.
pub struct PostgresSource {
    config: PostgresSourceConfig,
    stats: Arc<SourceStats>,
    /// The snapshot's progress as this source knows it: loaded at each session
    /// start, planned and read here. The pipeline gets its own copy through the
    /// snapshot events; nothing is shared.
    progress: Mutex<SnapshotProgress>,
    progress_loader: Option<ProgressLoader>,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("config", &self.config)
            .field("progress", &self.progress)
            .field("reloads_progress", &self.progress_loader.is_some())
            .finish_non_exhaustive()
    }
}

/// Reads the snapshot's progress as recorded (by the pipeline, in Kafka). Blocking.
pub type ProgressLoader =
    Arc<dyn Fn() -> Result<super::snapshot::SnapshotProgress, LoadError> + Send + Sync>;

/// Why the progress loader failed: the loader's own error, kept whole.
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

impl PostgresSource {
    /// A source for `config`.
    pub fn new(config: PostgresSourceConfig) -> Self {
        PostgresSource {
            config,
            stats: Arc::new(SourceStats::default()),
            progress: Mutex::default(),
            progress_loader: None,
        }
    }

    /// How to read the recorded progress, at the start of every session once this
    /// weir owns the slot: another weir may have started or advanced the snapshot
    /// while this one waited, and the record says what is left.
    pub fn with_progress_loader(mut self, loader: ProgressLoader) -> Self {
        self.progress_loader = Some(loader);
        self
    }

    /// Live figures, shared with the running source.
    pub fn stats(&self) -> Arc<SourceStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `shutdown` is cancelled (then it emits what is pending, reports the
    /// last flushed position and returns `Ok`), or until a failure that retrying
    /// within the policy's window does not cure.
    ///
    /// # Errors
    ///
    /// [`SourceError`]: non-retryable failures at once, retryable ones as
    /// [`SourceError::RetriesExhausted`] after the window.
    pub async fn run(
        &self,
        out: mpsc::Sender<SourceEvent>,
        mut flushed: watch::Receiver<Lsn>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError> {
        let mut failing_since: Option<Instant> = None;
        let mut backoff = self.config.retry.initial_backoff;
        loop {
            let sessions_before = self.stats.sessions.load(Ordering::Relaxed);
            let span = info_span!("source", stage = "source", slot = %self.config.slot);
            let result = self
                .session(&out, &mut flushed, &shutdown)
                .instrument(span)
                .await;
            let error = match result {
                Ok(()) => return Ok(()),
                Err(error) if !error.is_retryable() => return Err(error),
                Err(error) => error,
            };
            // A session that got as far as streaming starts the retry budget afresh.
            if self.stats.sessions.load(Ordering::Relaxed) > sessions_before {
                failing_since = None;
                backoff = self.config.retry.initial_backoff;
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            if self
                .config
                .retry
                .window
                .is_some_and(|window| since.elapsed() >= window)
            {
                return Err(SourceError::RetriesExhausted {
                    after: since.elapsed(),
                    last: Box::new(error),
                });
            }
            let wait = jitter(backoff);
            warn!(error = %crate::redact::error_chain(&error), retry_in_ms = wait.as_millis() as u64, "PostgreSQL source failed; retrying.");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(self.config.retry.max_backoff);
        }
    }

    async fn session(
        &self,
        out: &mpsc::Sender<SourceEvent>,
        flushed: &mut watch::Receiver<Lsn>,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        let config = &self.config;
        let control = config
            .connection
            .connect_control()
            .await
            .map_err(CatalogError::from)?;
        // `initial_only` reads no slot, so it owns none.
        if config.snapshot.mode != SnapshotMode::InitialOnly
            && !super::ownership::try_own(&control, &config.slot).await?
        {
            return Err(SourceError::SlotOwned {
                slot: config.slot.clone(),
            });
        }
        if let Some(loader) = self.progress_loader.clone()
            && config.snapshot.mode != SnapshotMode::Never
        {
            let recorded = tokio::task::spawn_blocking(move || loader())
                .await
                .map_err(|e| SourceError::Progress(Box::new(e)))?
                .map_err(SourceError::Progress)?;
            *lock(&self.progress) = recorded;
        }
        if config.snapshot.mode == SnapshotMode::InitialOnly {
            return self.snapshot_only(&control, out, shutdown).await;
        }
        if let PublicationState::Existing { missing } =
            ensure_publication(&control, &config.publication, &config.tables).await?
            && !missing.is_empty()
        {
            warn!(publication = %config.publication, missing = ?missing, "The publication does not publish every selected table; they are not streamed.");
        }
        let mut replication = ReplicationConnection::connect(&config.connection).await?;
        let exports = matches!(
            config.snapshot.mode,
            SnapshotMode::Initial | SnapshotMode::WhenNeeded
        );
        let slot = ensure_slot(
            &control,
            &mut replication,
            &config.slot,
            if exports {
                SlotSnapshot::Export
            } else {
                SlotSnapshot::Nothing
            },
        )
        .await?;
        let start = match &slot {
            SlotState::Created(created) => created.consistent_point,
            SlotState::Existing(info) => info.confirmed_flush_lsn.unwrap_or_default(),
        };
        if let Some(source) = self.snapshot_to_take(&slot) {
            // The replication connection stays idle meanwhile: its next command
            // would end the snapshot it exported.
            let snapshot = self.initial_snapshot(&control, source, start, out);
            tokio::select! {
                read = snapshot => read?,
                _ = shutdown.cancelled() => {
                    info!("Stopped during the snapshot; a restart resumes it.");
                    return Ok(());
                }
            }
        }
        let mut options = PgOutputOptions::for_server(
            replication.server_major_version().unwrap_or(10),
            vec![config.publication.clone()],
        );
        options.streaming &= config.stream_in_progress;
        if config.signals && !options.messages {
            warn!(
                server_major_version = replication.server_major_version(),
                "source.postgres.signals is on, but snapshot requests travel as logical messages, which pgoutput sends from PostgreSQL 14 on: this server will never deliver one."
            );
        }
        let stream = replication
            .start_logical_replication(&config.slot, start, &options)
            .await?;
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        info!(start = %start, "Streaming from the replication slot.");
        send(out, SourceEvent::SessionStarted { start }).await?;
        let session = Session {
            config,
            stats: &self.stats,
            control,
            stream,
            decoder: PgOutputDecoder::new(),
            batcher: ChangeBatcher::new(config.batch),
            looked_up: HashSet::new(),
            emitted_end: start,
            reported: Lsn::ZERO,
            last_status: Instant::now(),
            incremental: IncrementalSnapshot::new(
                &config.slot,
                config.tables.clone(),
                config.batch.max_rows,
            ),
            signal_ignored: false,
        };
        session.run(out, flushed, shutdown).await
    }
}

/// Which snapshot the initial snapshot reads.
#[derive(Debug)]
enum SnapshotSource {
    /// The one the slot exported when this session created it: exactly the data
    /// before the slot's consistent point.
    Exported(String),
    /// A new one, later than the slot's position: streaming then replays changes
    /// the snapshot already holds, and the last change of each key still wins.
    Fresh,
}

impl PostgresSource {
    /// Whether this session reads a snapshot, per the mode, the slot and the
    /// recorded progress.
    fn snapshot_to_take(&self, slot: &SlotState) -> Option<SnapshotSource> {
        let mode = self.config.snapshot.mode;
        let name = &self.config.slot;
        let mut progress = lock(&self.progress);
        match slot {
            _ if mode == SnapshotMode::Never => None,
            SlotState::Created(created) => {
                progress.restart(name);
                created.snapshot_name.clone().map(SnapshotSource::Exported)
            }
            SlotState::Existing(_) if progress.is_unfinished(name) => {
                info!(slot = %name, "Resuming the unfinished snapshot.");
                Some(SnapshotSource::Fresh)
            }
            SlotState::Existing(_)
                if mode == SnapshotMode::WhenNeeded && !progress.is_finished(name) =>
            {
                info!(slot = %name, "No finished snapshot is recorded for the slot: taking one.");
                progress.restart(name);
                Some(SnapshotSource::Fresh)
            }
            SlotState::Existing(_) => None,
        }
    }

    /// Reads the selected tables' rows under `source`, as of just before `start`,
    /// and sends them with their progress events and a closing commit marker.
    async fn initial_snapshot(
        &self,
        control: &Client,
        source: SnapshotSource,
        start: Lsn,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        let config = &self.config;
        let tables = resolve_tables(control, &config.tables).await?;
        let (exporter, name) = match source {
            SnapshotSource::Exported(name) => (None, name),
            SnapshotSource::Fresh => {
                let (client, name, _) = export_snapshot(&config.connection).await?;
                (Some(client), name)
            }
        };
        // Just before the slot's start: a transaction committed exactly there is
        // streamed, and its rows must come after the snapshot's in the checkpoint.
        let position = Lsn(start.0.saturating_sub(1));
        self.read_snapshot(&tables, &name, position, out).await?;
        drop(exporter);
        Ok(())
    }

    /// `initial_only`: a snapshot of its own, no slot, no streaming.
    async fn snapshot_only(
        &self,
        control: &Client,
        out: &mpsc::Sender<SourceEvent>,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        let slot = &self.config.slot;
        {
            let mut progress = lock(&self.progress);
            if progress.is_finished(slot) {
                info!("The snapshot is complete already; nothing to do.");
                return Ok(());
            }
            if !progress.is_unfinished(slot) {
                progress.restart(slot);
            }
        }
        let tables = resolve_tables(control, &self.config.tables).await?;
        let (exporter, name, position) = export_snapshot(&self.config.connection).await?;
        tokio::select! {
            read = self.read_snapshot(&tables, &name, position, out) => read?,
            _ = shutdown.cancelled() => info!("Stopped during the snapshot; a restart resumes it."),
        }
        drop(exporter);
        Ok(())
    }

    /// Reads `tables` under snapshot `name`; the rows and the closing commit marker
    /// carry `position`.
    async fn read_snapshot(
        &self,
        tables: &[(String, String)],
        name: &str,
        position: Lsn,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        // The pipeline keeps its own copy from here, updated by the events that
        // follow: the two sides share no state.
        let progress = Box::new(lock(&self.progress).clone());
        send(out, SnapshotEvent::Started { position, progress }.into()).await?;
        let snapshot = InitialSnapshot {
            connection: &self.config.connection,
            tables,
            options: self.config.snapshot,
            rows_per_batch: self.config.batch.max_rows,
            position,
            progress: &self.progress,
        };
        let rows = snapshot
            .run(name, out)
            .instrument(info_span!("snapshot", stage = "snapshot"))
            .await
            .map_err(|error| match error {
                SnapshotError::Closed => SourceError::DownstreamClosed,
                other => other.into(),
            })?;
        send(out, SnapshotEvent::Finished { rows }.into()).await?;
        let marker = CommittedTransaction {
            xid: 0,
            commit_lsn: position,
            end_lsn: position,
            rows,
        };
        send(out, SourceEvent::Committed(marker)).await
    }
}

/// One replication session's state.
struct Session<'a> {
    config: &'a PostgresSourceConfig,
    stats: &'a SourceStats,
    control: Client,
    stream: ReplicationStream,
    decoder: PgOutputDecoder,
    batcher: ChangeBatcher,
    /// Relations whose primary key was looked up in this session.
    looked_up: HashSet<u32>,
    /// End of the last transaction (or idle stretch) emitted downstream.
    emitted_end: Lsn,
    /// The flush position last reported to the server.
    reported: Lsn,
    last_status: Instant,
    /// Tables asked to be snapshotted while streaming.
    incremental: IncrementalSnapshot,
    /// A refused snapshot request was reported (once per session).
    signal_ignored: bool,
}

impl Session<'_> {
    async fn run(
        mut self,
        out: &mpsc::Sender<SourceEvent>,
        flushed: &mut watch::Receiver<Lsn>,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        let mut linger = tokio::time::interval(self.config.linger);
        linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut status = tokio::time::interval(STATUS_THROTTLE.min(self.config.status_interval));
        status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat =
            tokio::time::interval(self.config.heartbeat.unwrap_or(Duration::from_secs(3600)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return self.finish(out, flushed).await,
                _ = std::future::ready(()), if self.incremental.wants_chunk() => {
                    self.incremental.read_chunk(&self.control).await?;
                }
                event = self.stream.recv() => {
                    let event = event?;
                    let reply = matches!(&event, ReplicationEvent::Keepalive(k) if k.reply_requested);
                    self.on_event(event, out).await?;
                    // The stream wins every race above the timers while WAL flows:
                    // report from here too, so the slot keeps pace with Kafka and a
                    // restart resends little. A requested reply goes out at once.
                    if reply || self.last_status.elapsed() >= STATUS_THROTTLE {
                        let current = *flushed.borrow();
                        self.report(current, reply).await?;
                    }
                }
                _ = linger.tick() => {
                    if self.batcher.pending_rows() > 0 {
                        self.batcher.flush()?;
                        self.emit(out).await?;
                    }
                }
                _ = status.tick() => {
                    let current = *flushed.borrow();
                    self.report(current, false).await?;
                }
                _ = heartbeat.tick(), if self.config.heartbeat.is_some() => self.heartbeat().await,
            }
        }
    }

    async fn on_event(
        &mut self,
        event: ReplicationEvent,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        match event {
            ReplicationEvent::XLogData(data) => {
                self.stats
                    .server_wal_end
                    .fetch_max(data.wal_end.0, Ordering::Relaxed);
                self.stats
                    .received_lsn
                    .fetch_max(data.wal_start.0, Ordering::Relaxed);
                if data.data.is_empty() {
                    // PostgreSQL 13 and 14 send an empty message where a
                    // transaction's origin has no name they can see (a replayed
                    // transaction): nothing to decode, and no reason to stop.
                    tracing::debug!(wal_start = %data.wal_start, "skipping an empty pgoutput message");
                    return Ok(());
                }
                let message = self.decoder.decode(data.data)?;
                match &message {
                    PgOutputMessage::Relation(relation) if self.looked_up.insert(relation.oid) => {
                        let keys = primary_keys(&self.control, &[relation.oid]).await?;
                        if let Some(key) = keys.get(&relation.oid) {
                            self.batcher.set_primary_key(relation.oid, key.clone());
                        }
                    }
                    PgOutputMessage::Begin(begin) => {
                        self.stats
                            .last_commit_time_micros
                            .store(begin.commit_time_micros, Ordering::Relaxed);
                    }
                    PgOutputMessage::Message(message) if message.prefix == HEARTBEAT_PREFIX => {
                        self.stats
                            .last_commit_time_micros
                            .store(now_unix_micros(), Ordering::Relaxed);
                        self.idle_progress(message.lsn, out).await?;
                    }
                    PgOutputMessage::Message(message) if message.prefix == SIGNAL_PREFIX => {
                        if self.config.signals {
                            self.incremental.signal(&message.content);
                        } else if !self.signal_ignored {
                            self.signal_ignored = true;
                            warn!(lsn = %message.lsn, "Ignored a snapshot request (a weir_signal message): this pipeline does not accept them (source.postgres.signals is false).");
                        }
                    }
                    PgOutputMessage::Message(message) if message.prefix == WATERMARK_PREFIX => {
                        if let Watermark::High(lsn) =
                            self.incremental.watermark(&message.content, message.lsn)
                        {
                            self.close_chunk(lsn, out).await?;
                        }
                    }
                    _ => {}
                }
                self.batcher.push(&message, data.wal_start)?;
                self.emit(out).await?;
            }
            ReplicationEvent::Keepalive(keepalive) => {
                self.stats
                    .server_wal_end
                    .fetch_max(keepalive.wal_end.0, Ordering::Relaxed);
                // The server sends keepalives only after everything before `wal_end`,
                // so with nothing open here that stretch of WAL holds nothing for us.
                self.idle_progress(keepalive.wal_end, out).await?;
            }
            // A server that shuts down ends the stream once it has our confirmation
            // of everything sent; the next session resumes from there.
            ReplicationEvent::End => return Err(ReplicationError::StreamEnded.into()),
        }
        Ok(())
    }

    /// Emits a zero-row commit at `lsn` when nothing is open or pending, so confirming
    /// it moves the slot across WAL that holds nothing for us.
    async fn idle_progress(
        &mut self,
        lsn: Lsn,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        if self.batcher.is_idle() && lsn > self.emitted_end {
            self.emitted_end = lsn;
            // Confirming `lsn` is right, but a transaction whose commit record
            // starts exactly there is still to come (a keepalive's end of WAL can
            // be the start of a commit being decoded): the marker sits just before
            // it, so that transaction stays after it in the checkpoint order.
            let marker = CommittedTransaction {
                xid: 0,
                commit_lsn: Lsn(lsn.0 - 1),
                end_lsn: lsn,
                rows: 0,
            };
            send(out, SourceEvent::Committed(marker)).await?;
        }
        Ok(())
    }

    /// The high watermark of the chunk in flight streamed past at `lsn` (the end
    /// of its record): every change before it goes first, then the chunk's rows
    /// that no change superseded, as a transaction of their own just before the
    /// watermark's end.
    async fn close_chunk(
        &mut self,
        lsn: Lsn,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        self.batcher.flush()?;
        self.emit(out).await?;
        // pgoutput gives a message the position where its record ends, which
        // can be exactly where the next transaction's commit record starts:
        // the chunk sits just before it, and after every earlier commit.
        let position = Lsn(lsn.0.saturating_sub(1));
        let Some(rows) = self.incremental.close(position)? else {
            return Ok(());
        };
        let count = rows.num_rows() as u64;
        self.stats.rows.fetch_add(count, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        send(out, SourceEvent::Batch(rows)).await?;
        self.emitted_end = self.emitted_end.max(position);
        let marker = CommittedTransaction {
            xid: 0,
            commit_lsn: position,
            end_lsn: position,
            rows: count,
        };
        send(out, SourceEvent::Committed(marker)).await
    }

    /// Sends what the batcher finished.
    async fn emit(&mut self, out: &mpsc::Sender<SourceEvent>) -> Result<(), SourceError> {
        while let Some(output) = self.batcher.pop()? {
            let event = match output {
                BatcherOutput::Batch(batch) => {
                    self.incremental.streamed(&batch);
                    self.stats
                        .rows
                        .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    SourceEvent::Batch(batch)
                }
                BatcherOutput::Committed(commit) => {
                    self.emitted_end = self.emitted_end.max(commit.end_lsn);
                    SourceEvent::Committed(commit)
                }
            };
            send(out, event).await?;
        }
        Ok(())
    }

    async fn heartbeat(&mut self) {
        let sql = format!("SELECT pg_logical_emit_message(false, '{HEARTBEAT_PREFIX}', '')");
        if let Err(error) = self.control.batch_execute(&sql).await {
            warn!(%error, "Heartbeat failed.");
        }
    }

    /// Reports `flushed` when it moved (at most every [`STATUS_THROTTLE`]) or when the
    /// status interval passed.
    async fn report(&mut self, flushed: Lsn, force: bool) -> Result<(), SourceError> {
        let due = self.last_status.elapsed() >= self.config.status_interval;
        if force || due || flushed > self.reported {
            self.send_status(flushed.max(self.reported)).await?;
        }
        Ok(())
    }

    async fn send_status(&mut self, flushed: Lsn) -> Result<(), SourceError> {
        self.stream.send_status(StandbyStatus::at(flushed)).await?;
        self.reported = flushed;
        self.last_status = Instant::now();
        self.stats
            .confirmed_lsn
            .fetch_max(flushed.0, Ordering::Relaxed);
        Ok(())
    }

    /// Graceful end: emit what is pending, report the last flushed position, stop.
    async fn finish(
        mut self,
        out: &mpsc::Sender<SourceEvent>,
        flushed: &watch::Receiver<Lsn>,
    ) -> Result<(), SourceError> {
        self.batcher.flush()?;
        self.emit(out).await?;
        let last = *flushed.borrow();
        self.report(last, true).await?;
        self.stream.stop().await?;
        info!(confirmed = %self.reported, "Source stopped.");
        Ok(())
    }
}

async fn send(out: &mpsc::Sender<SourceEvent>, event: SourceEvent) -> Result<(), SourceError> {
    out.send(event)
        .await
        .map_err(|_| SourceError::DownstreamClosed)
}

/// `base` ± 20%, so many pipelines do not retry in lockstep.
fn jitter(base: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let factor = 0.8 + f64::from(nanos % 1000) / 1000.0 * 0.4;
    base.mul_f64(factor)
}
