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
use crate::source::PgConnectOptions;
use crate::source::tables::quote_identifier;

/// One range of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Splits `table` into about `chunks` ranges (at least one). Runs in the caller's
/// transaction, which should hold the snapshot.
pub async fn plan(
    client: &Client,
    table: &SnapshotTable,
    chunks: u64,
) -> Result<Vec<Chunk>, SnapshotError> {
    let chunks = chunks.max(1);
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
        let row = client
            .query_one(
                &format!(
                    "SELECT min({key})::int8, max({key})::int8 FROM {relation}",
                    key = quote_identifier(&column)
                ),
                &[],
            )
            .await
            .map_err(failed)?;
        let (Some(min), Some(max)) = (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1))
        else {
            return Ok(vec![Chunk::Key {
                column,
                start: None,
                end: None,
            }]);
        };
        let span = i128::from(max) - i128::from(min) + 1;
        let step = (span / i128::from(chunks)).max(1);
        let mut out = Vec::new();
        let mut start: Option<i64> = None;
        let mut bound = i128::from(min) + step;
        while bound <= i128::from(max) {
            let end = i64::try_from(bound).unwrap_or(i64::MAX);
            out.push(Chunk::Key {
                column: column.clone(),
                start,
                end: Some(end),
            });
            start = Some(end);
            bound += step;
        }
        out.push(Chunk::Key {
            column,
            start,
            end: None,
        });
        return Ok(out);
    }
    let pages: i64 = client
        .query_one(
            "SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int8)::int8",
            &[&relation],
        )
        .await
        .map_err(failed)?
        .get(0);
    let pages = u64::try_from(pages).unwrap_or(0);
    let step = pages.div_ceil(chunks).max(1);
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

/// Reads `table`'s `chunks` on `clients` (each holding the same snapshot) in
/// parallel, sending batches to `out`. Returns the rows read.
pub async fn read_chunks(
    clients: Vec<Arc<Client>>,
    table: &SnapshotTable,
    chunks: Vec<Chunk>,
    meta: RowMeta,
    rows_per_batch: usize,
    out: mpsc::Sender<RecordBatch>,
) -> Result<u64, SnapshotError> {
    let queue = Arc::new(Mutex::new(VecDeque::from(chunks)));
    let mut workers = tokio::task::JoinSet::new();
    for client in clients {
        let queue = Arc::clone(&queue);
        let table = table.clone();
        let out = out.clone();
        workers.spawn(async move {
            let mut rows = 0;
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                let Some(chunk) = next else { break };
                rows += read_where(
                    &client,
                    &table,
                    &chunk.condition(),
                    meta,
                    rows_per_batch,
                    &out,
                )
                .await?;
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
