//! A table read in chunks by several connections that share one snapshot.
//!
//! Every worker opens a `REPEATABLE READ` transaction and imports the snapshot
//! (`SET TRANSACTION SNAPSHOT`), normally the one a replication slot exported when
//! it was created, so the rows read are exactly the table at the slot's consistent
//! point and streaming from the slot continues with no gap and no overlap.
//!
//! Chunks are ranges of a single-column integer primary key, split evenly between
//! its minimum and maximum, or, for any other table, ranges of heap pages by `ctid`
//! (PostgreSQL 14+ scans those directly). Workers take chunks from a shared queue,
//! so a slow chunk does not hold up the others, and send each batch as it fills:
//! memory stays at a few batches per worker whatever the chunk's size.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::table::{SnapshotError, SnapshotTable, read_where};
use crate::batch::RowMeta;
use crate::batch::types::oid;
use crate::contract::sql::quote_identifier;
use crate::source::PgConnectOptions;

/// One range of a table. Serializable because the plan is persisted with the
/// snapshot's progress: a resumed snapshot reads the ranges it did not finish, even
/// when the table's bounds moved meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Chunk {
    /// `key >= start AND key < end` (`None`: unbounded).
    Key {
        /// The key column.
        column: String,
        /// Inclusive lower bound.
        start: Option<i64>,
        /// Exclusive upper bound.
        end: Option<i64>,
    },
    /// Heap pages `start..end` (`None`: to the end).
    Pages {
        /// First page.
        start: u64,
        /// Page past the last; `None`: the rest of the table.
        end: Option<u64>,
    },
}

impl Chunk {
    /// The `WHERE` condition selecting the chunk.
    pub fn condition(&self) -> String {
        match self {
            Chunk::Key { column, start, end } => {
                let column = quote_identifier(column);
                let mut parts = Vec::new();
                if let Some(start) = start {
                    parts.push(format!("{column} >= {start}"));
                }
                if let Some(end) = end {
                    parts.push(format!("{column} < {end}"));
                }
                if parts.is_empty() {
                    "true".to_owned()
                } else {
                    parts.join(" AND ")
                }
            }
            Chunk::Pages { start, end } => match end {
                Some(end) => format!("ctid >= '({start},0)'::tid AND ctid < '({end},0)'::tid"),
                None => format!("ctid >= '({start},0)'::tid"),
            },
        }
    }
}

/// Splits `table` into ranges of about `rows_per_chunk` rows (at least one range),
/// at most `max_chunks`. Runs in the caller's transaction, which should hold the
/// snapshot.
///
/// A single-column integer key is split at real key values, found by walking its
/// index (`ORDER BY key OFFSET n`): even splits between the minimum and the
/// maximum would leave most ranges empty for a key with gaps, and one range
/// holding nearly everything. Other tables are split by heap pages, using the
/// planner's rows per page.
pub async fn plan(
    client: &Client,
    table: &SnapshotTable,
    rows_per_chunk: u64,
    max_chunks: usize,
) -> Result<Vec<Chunk>, SnapshotError> {
    let rows_per_chunk = i64::try_from(rows_per_chunk.max(1)).unwrap_or(i64::MAX);
    let max_chunks = max_chunks.max(1);
    let name = table.name();
    let failed = |source| SnapshotError::Postgres {
        table: name.clone(),
        source,
    };
    let relation = table.quoted_name();
    let integer_key = match table.schema.primary_key.as_slice() {
        [key] => table
            .schema
            .columns
            .iter()
            .find(|c| &c.field_name == key)
            .filter(|c| matches!(c.type_oid, oid::INT2 | oid::INT4 | oid::INT8))
            .map(|c| c.name.clone()),
        _ => None,
    };
    if let Some(column) = integer_key {
        let key = quote_identifier(&column);
        let next_bound = format!(
            "SELECT {key}::int8 FROM {relation} WHERE {key} >= $1::int8 \
             ORDER BY {key} OFFSET $2::int8 LIMIT 1"
        );
        let mut out = Vec::new();
        let mut start: Option<i64> = None;
        while out.len() + 1 < max_chunks {
            let from = start.unwrap_or(i64::MIN);
            let Some(row) = client
                .query_opt(&next_bound, &[&from, &rows_per_chunk])
                .await
                .map_err(failed)?
            else {
                break;
            };
            let end: i64 = row.get(0);
            out.push(Chunk::Key {
                column: column.clone(),
                start,
                end: Some(end),
            });
            start = Some(end);
        }
        out.push(Chunk::Key {
            column,
            start,
            end: None,
        });
        return Ok(out);
    }
    let row = client
        .query_one(
            "SELECT (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8, \
                    GREATEST(c.reltuples, 0)::float8, GREATEST(c.relpages, 1)::float8 \
             FROM pg_class c WHERE c.oid = $1::text::regclass",
            &[&relation],
        )
        .await
        .map_err(failed)?;
    let pages = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    let rows_per_page = (row.get::<_, f64>(1) / row.get::<_, f64>(2)).max(1.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let pages_per_chunk = ((rows_per_chunk as f64 / rows_per_page).ceil() as u64).max(1);
    let step = pages_per_chunk.max(pages.div_ceil(max_chunks as u64));
    let mut out = Vec::new();
    let mut start = 0;
    while start + step < pages {
        out.push(Chunk::Pages {
            start,
            end: Some(start + step),
        });
        start += step;
    }
    out.push(Chunk::Pages { start, end: None });
    Ok(out)
}

/// Opens a connection whose transaction holds snapshot `snapshot`.
pub async fn snapshot_connection(
    options: &PgConnectOptions,
    snapshot: &str,
) -> Result<Client, SnapshotError> {
    let client = options
        .connect_control()
        .await
        .map_err(|error| SnapshotError::Connect(error.to_string()))?;
    // The snapshot name comes from the server; quote it anyway.
    let import = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
        snapshot.replace('\'', "''")
    );
    client
        .batch_execute(&import)
        .await
        .map_err(|source| SnapshotError::Postgres {
            table: "(snapshot import)".to_owned(),
            source,
        })?;
    Ok(client)
}

/// A chunk was read whole: every batch of it was sent before this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRead {
    /// `schema.table`.
    pub table: Arc<str>,
    /// The chunk's index in the table's plan.
    pub index: usize,
    /// Rows it held.
    pub rows: u64,
}

/// Reads `table`'s `chunks` (index in the plan, range) on `clients` (each holding
/// the same snapshot) in parallel, sending batches to `out` and, after a chunk's
/// last batch, its [`ChunkRead`]; only rows meeting `filter` (a SQL condition)
/// when there is one. Returns the rows read.
pub async fn read_chunks<T>(
    clients: Vec<Arc<Client>>,
    table: &SnapshotTable,
    chunks: Vec<(usize, Chunk)>,
    meta: RowMeta,
    rows_per_batch: usize,
    filter: Option<Arc<str>>,
    out: mpsc::Sender<T>,
) -> Result<u64, SnapshotError>
where
    T: From<RecordBatch> + From<ChunkRead> + Send + 'static,
{
    let queue = Arc::new(Mutex::new(VecDeque::from(chunks)));
    let name: Arc<str> = table.name().into();
    let mut workers = tokio::task::JoinSet::new();
    for client in clients {
        let queue = Arc::clone(&queue);
        let name = Arc::clone(&name);
        let table = table.clone();
        let out = out.clone();
        let filter = filter.clone();
        workers.spawn(async move {
            let mut rows = 0;
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                let Some((index, chunk)) = next else { break };
                let condition = match &filter {
                    Some(filter) => format!("({}) AND {filter}", chunk.condition()),
                    None => chunk.condition(),
                };
                let read =
                    read_where(&client, &table, &condition, meta, rows_per_batch, &out).await?;
                let done = ChunkRead {
                    table: Arc::clone(&name),
                    index,
                    rows: read,
                };
                out.send(T::from(done))
                    .await
                    .map_err(|_| SnapshotError::Closed)?;
                rows += read;
            }
            Ok::<u64, SnapshotError>(rows)
        });
    }
    let mut total = 0;
    while let Some(result) = workers.join_next().await {
        total += result
            .map_err(|e| SnapshotError::Connect(format!("a snapshot worker failed: {e}")))??;
    }
    Ok(total)
}

/// A snapshot no slot exported: a `REPEATABLE READ` transaction on a connection of
/// its own exports it. The returned client holds it; keep it open until every
/// worker imported the snapshot. Also returns the WAL position at the time.
pub async fn export_snapshot(
    options: &PgConnectOptions,
) -> Result<(Client, String, crate::Lsn), SnapshotError> {
    let failed = |source| SnapshotError::Postgres {
        table: "(snapshot export)".to_owned(),
        source,
    };
    let client = options
        .connect_control()
        .await
        .map_err(|error| SnapshotError::Connect(error.to_string()))?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(failed)?;
    let row = client
        .query_one(
            "SELECT pg_export_snapshot(), pg_current_wal_lsn()::text",
            &[],
        )
        .await
        .map_err(failed)?;
    let name: String = row.get(0);
    let position: String = row.get(1);
    let position = position
        .parse()
        .map_err(|_| SnapshotError::Connect(format!("unreadable WAL position {position}")))?;
    Ok((client, name, position))
}
