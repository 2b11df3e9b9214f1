//! The initial snapshot of every selected table, read under one snapshot by
//! several connections and sent down the source's channel in order with its
//! progress events.
//!
//! Tables are read one after the other, each split into chunks that the
//! connections share. A table's plan is recorded in the shared progress before its
//! first chunk is read, so a resumed snapshot reads the same ranges and skips the
//! ones Kafka already acknowledged.

use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;
use tracing::info;

use super::marks::EdgeMarker;
use super::parallel::{ChunkRead, plan, read_chunks, snapshot_connection};
use super::progress::{SnapshotMode, SnapshotProgress, TableProgress, lock};
use super::table::{SnapshotError, SnapshotTable, describe};
use crate::Lsn;
use crate::batch::RowMeta;
use crate::contract::SnapshotMarks;
use crate::contract::columns::op;
use crate::source::PgConnectOptions;

/// Default rows per chunk: big enough that waiting for Kafka's acknowledgement
/// after each chunk costs little, small enough that a restart redoes little.
pub const DEFAULT_CHUNK_ROWS: u64 = 100_000;
/// Default connections reading in parallel.
pub const DEFAULT_WORKERS: usize = 2;
/// Most chunks one table is split into, so the persisted plan stays small.
const MAX_CHUNKS: usize = 4096;

/// How the initial snapshot runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// When it runs.
    pub mode: SnapshotMode,
    /// Connections reading in parallel.
    pub workers: usize,
    /// Rows per chunk (from the planner's estimate).
    pub chunk_rows: u64,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            mode: SnapshotMode::default(),
            workers: DEFAULT_WORKERS,
            chunk_rows: DEFAULT_CHUNK_ROWS,
        }
    }
}

/// What the snapshot tells the pipeline, in order with its batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotEvent {
    /// A snapshot starts or resumes. `progress` says which tables and chunks are
    /// left: the pipeline's copy from now on, which it persists and a restart must
    /// finish.
    Started {
        /// The rows' commit LSN: just before the position streaming starts from.
        position: Lsn,
        /// The recorded progress this run resumes (or a fresh one).
        progress: Box<SnapshotProgress>,
    },
    /// A table's chunks are being read.
    TableStarted {
        /// `schema.table`.
        table: String,
        /// The planner's estimate of its rows.
        estimated_rows: u64,
        /// Chunks in its plan.
        chunks: usize,
        /// Chunks left to read.
        remaining: usize,
        /// Its chunks and which are done (planned now, or as recorded).
        plan: Box<TableProgress>,
    },
    /// Every batch of a chunk was sent: once Kafka acknowledged them, it is done.
    ChunkRead(ChunkRead),
    /// Every table was read.
    Finished {
        /// Rows read in this run (a resumed snapshot counts only its part).
        rows: u64,
    },
}

impl From<ChunkRead> for SnapshotEvent {
    fn from(chunk: ChunkRead) -> Self {
        SnapshotEvent::ChunkRead(chunk)
    }
}

/// One run of the initial snapshot.
#[derive(Debug)]
pub struct InitialSnapshot<'a> {
    /// Where to connect.
    pub connection: &'a PgConnectOptions,
    /// The tables, as (schema, table).
    pub tables: &'a [(String, String)],
    /// Workers and chunk size.
    pub options: SnapshotOptions,
    /// Rows per batch.
    pub rows_per_batch: usize,
    /// The rows' `_commit_lsn` and `_lsn`.
    pub position: Lsn,
    /// Which chunks are done; the source's own copy, where new plans are kept.
    pub progress: &'a Mutex<SnapshotProgress>,
    /// A resumed run: only rows meeting this SQL condition (visible to the first
    /// run's snapshot).
    pub filter: Option<Arc<str>>,
}

impl InitialSnapshot<'_> {
    /// Reads every table's remaining chunks under snapshot `snapshot` (exported by a
    /// connection the caller keeps open until this returns), sending batches and
    /// progress events to `out`. Returns the rows read.
    pub async fn run<T>(&self, snapshot: &str, out: &mpsc::Sender<T>) -> Result<u64, SnapshotError>
    where
        T: From<(RecordBatch, SnapshotMarks)> + From<SnapshotEvent> + Send + 'static,
    {
        // Every connection imports the snapshot before anything else runs: the
        // exporter may let it go once they hold it.
        let mut clients = Vec::with_capacity(self.options.workers.max(1));
        for _ in 0..self.options.workers.max(1) {
            clients.push(Arc::new(
                snapshot_connection(self.connection, snapshot).await?,
            ));
        }
        let meta = RowMeta {
            op: op::READ,
            lsn: self.position,
            commit_lsn: self.position,
            xid: 0,
            commit_time_micros: crate::clock::now_unix_micros(),
            seq: 0,
        };
        let mut total = 0;
        let fresh = lock(self.progress)
            .tables
            .values()
            .all(|table| !table.done.contains(&true));
        let mut marker = EdgeMarker::new(fresh);
        for (schema, name) in self.tables {
            let table = describe(&clients[0], schema, name).await?;
            let qualified = table.name();
            let recorded = lock(self.progress).tables.get(&qualified).cloned();
            let progress = match recorded {
                Some(progress) if !progress.chunks.is_empty() => progress,
                _ => {
                    let progress = self.plan_table(&clients[0], &table).await?;
                    lock(self.progress)
                        .tables
                        .insert(qualified.clone(), progress.clone());
                    progress
                }
            };
            let remaining = progress.remaining();
            marker.begin_table(qualified.as_str().into(), progress.done.contains(&true));
            marker
                .event(
                    SnapshotEvent::TableStarted {
                        table: qualified.clone(),
                        estimated_rows: progress.estimated_rows,
                        chunks: progress.chunks.len(),
                        remaining: remaining.len(),
                        plan: Box::new(progress.clone()),
                    },
                    out,
                )
                .await?;
            if remaining.is_empty() {
                continue;
            }
            info!(table = %qualified, chunks = progress.chunks.len(), remaining = remaining.len(), estimated_rows = progress.estimated_rows, "Snapshot of a table starts.");
            // The readers send into a relay that this task forwards in order while
            // they run. The forwarder owns the relay's receiver: if it stops, the
            // readers' sends fail instead of waiting for ever.
            let (relay, mut relayed) = mpsc::channel::<Relay>(4);
            let reader = read_chunks(
                clients.clone(),
                &table,
                remaining,
                meta,
                self.rows_per_batch,
                self.filter.clone(),
                relay,
            );
            let marker = &mut marker;
            let forward = async move {
                let mut rows = 0;
                while let Some(item) = relayed.recv().await {
                    match item {
                        Relay::Batch(batch) => marker.batch(batch, out).await?,
                        Relay::Chunk(chunk) => {
                            rows += chunk.rows;
                            marker.event(SnapshotEvent::ChunkRead(chunk), out).await?;
                        }
                    }
                }
                Ok::<u64, SnapshotError>(rows)
            };
            let (read, forwarded) = tokio::join!(reader, forward);
            let forwarded = forwarded?;
            read?;
            total += forwarded;
        }
        marker.finish(out).await?;
        Ok(total)
    }

    /// Splits `table` into chunks of about `chunk_rows` rows, at least one per worker.
    async fn plan_table(
        &self,
        client: &tokio_postgres::Client,
        table: &SnapshotTable,
    ) -> Result<TableProgress, SnapshotError> {
        let estimated_rows: i64 = client
            .query_one(
                "SELECT GREATEST(reltuples, 0)::int8 FROM pg_class WHERE oid = $1::text::regclass",
                &[&table.quoted_name()],
            )
            .await
            .map_err(|source| SnapshotError::Postgres {
                table: table.name(),
                source,
            })?
            .get(0);
        let estimated_rows = u64::try_from(estimated_rows).unwrap_or(0);
        // Small tables still give every worker a part.
        let workers = self.options.workers.max(1) as u64;
        let rows_per_chunk = match estimated_rows {
            0 => self.options.chunk_rows,
            rows => self.options.chunk_rows.min((rows / workers).max(1)),
        };
        let chunks = plan(client, table, rows_per_chunk, MAX_CHUNKS).await?;
        Ok(TableProgress {
            done: vec![false; chunks.len()],
            chunks,
            rows: 0,
            estimated_rows,
        })
    }
}

/// What the chunk readers hand to the forwarding loop.
enum Relay {
    Batch(RecordBatch),
    Chunk(ChunkRead),
}

impl From<RecordBatch> for Relay {
    fn from(batch: RecordBatch) -> Self {
        Relay::Batch(batch)
    }
}

impl From<ChunkRead> for Relay {
    fn from(chunk: ChunkRead) -> Self {
        Relay::Chunk(chunk)
    }
}
