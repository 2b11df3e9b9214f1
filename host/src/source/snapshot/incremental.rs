//! Re-snapshot of a table while streaming goes on, deduplicated with watermarks
//! in the manner of DBLog (Andreas Andreakis and Ioannis Papapanagiotou, 2020).
//!
//! `weir snapshot` asks for it with a logical message (`weir_signal`) in the WAL,
//! so the request reaches the pipeline in order with the changes, even one that is
//! not running yet. The table is then read in key order, one chunk at a time,
//! between the streaming of changes:
//!
//! 1. write a *low* watermark message into the WAL;
//! 2. read the next chunk (`key > last key ORDER BY key LIMIT n`, one snapshot);
//! 3. write a *high* watermark message.
//!
//! Streaming reaches the low watermark, then every change committed around the
//! read, then the high one. Each streamed change of the table in that window
//! removes its key from the chunk: the stream already carries that row's state as
//! of the read or later. At the high watermark the chunk's remaining rows go out as
//! snapshot reads (`_op = r`), in stream order, so a consumer applying messages in
//! order per key never sees a stale chunk row after a newer change.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StructArray, UInt64Array};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::UInt32Type;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::progress::IncrementalTable;
use super::table::{SnapshotError, SnapshotTable, describe, read_where};
use super::visibility::FirstSnapshot;
use super::writers::Writers;
use crate::Lsn;
use crate::batch::RowMeta;
use crate::contract::TableSelector;
use crate::contract::columns::{BEFORE, COMMIT_LSN, LSN, XID, op, qualified_table_name};
use crate::contract::sql::{quote_identifier, quote_literal, quote_qualified};

/// Prefix of the logical message that asks for a snapshot.
pub const SIGNAL_PREFIX: &str = "weir_signal";
/// Prefix of the watermark messages around each chunk.
pub const WATERMARK_PREFIX: &str = "weir_watermark";
/// Rows per chunk: each chunk is held in memory until its high watermark.
pub const CHUNK_ROWS: usize = 4096;

/// What `weir snapshot` writes into the WAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSignal {
    /// The slot of the pipeline asked (others ignore it).
    pub slot: String,
    /// `schema.table` names.
    pub tables: Vec<String>,
}

impl SnapshotSignal {
    /// The SQL that emits this signal.
    pub fn sql(&self) -> Result<String, serde_json::Error> {
        Ok(format!(
            "SELECT pg_logical_emit_message(false, '{SIGNAL_PREFIX}', {})",
            quote_literal(&serde_json::to_string(self)?)
        ))
    }
}

/// A table that just joined the publication, and the writers it waits for.
struct Waiting {
    writers: Writers,
    asked: Asked,
}

/// A chunk read and waiting for its high watermark.
struct Window {
    /// `<slot>:<session>:<sequence>`.
    id: String,
    /// Set once the low watermark streamed past.
    open: bool,
    /// The chunk's rows.
    rows: RecordBatch,
    /// Each row's key (row format), in row order.
    row_keys: Vec<Box<[u8]>>,
    /// The keys still to emit: no streamed change of them inside the window.
    keys: HashSet<Box<[u8]>>,
    /// The cursor before this chunk, to read it again if it cannot be resolved.
    previous: Option<Vec<String>>,
    /// The MVCC snapshot the chunk was read under. A transaction can commit
    /// before the low watermark in the WAL and still be running for a snapshot
    /// taken after it (PostgreSQL writes the commit record before it makes the
    /// transaction visible): its changes stream before the window opens, and
    /// the chunk holds the rows as they were before it.
    read_under: FirstSnapshot,
}

/// The table being read.
struct Cursor {
    table: SnapshotTable,
    /// `schema.table`.
    name: String,
    converter: RowConverter,
    /// The key's field names.
    key_fields: Vec<String>,
    /// The last chunk's last key as SQL literals, in key order.
    after: Option<Vec<String>>,
    /// The greatest key when the table's snapshot started: rows inserted later
    /// come through the stream, and a busy table's growing tail cannot keep the
    /// snapshot going for ever.
    last: Vec<String>,
    rows: u64,
}

/// The incremental snapshots of one replication session.
pub struct IncrementalSnapshot {
    slot: String,
    selectors: Vec<TableSelector>,
    /// Tables to read.
    queue: VecDeque<Asked>,
    /// A table that just joined, waiting for the transactions writing it then.
    waiting: Option<Waiting>,
    cursor: Option<Cursor>,
    window: Option<Window>,
    sequence: u64,
    /// Tells this session's watermarks from an earlier session's, which a
    /// reconnect replays from the slot's position.
    session: i64,
    rows_per_batch: usize,
}

impl std::fmt::Debug for IncrementalSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncrementalSnapshot")
            .field("queue", &self.queue)
            .field("table", &self.cursor.as_ref().map(|c| &c.name))
            .finish_non_exhaustive()
    }
}

/// A table to read.
#[derive(Debug)]
struct Asked {
    /// `schema.table`.
    table: String,
    joined: Joined,
    /// Resumed after a restart: the greatest key acknowledged before.
    after: Option<Vec<String>>,
}

/// A chunk whose high watermark streamed past.
#[derive(Debug)]
pub struct ClosedChunk {
    /// `schema.table`.
    pub table: String,
    /// The chunk's greatest key, as SQL literals: where a restart goes on.
    pub after: Vec<String>,
    /// Its rows no streamed change superseded, positioned at the watermark.
    pub rows: Option<RecordBatch>,
}

/// Whether a table asked for has just been added to the publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// Published all along (`weir snapshot`).
    Before,
    /// Added by the transaction that announced it: writers of that moment may
    /// hold changes the stream will never carry (see [`super::writers`]).
    Now,
}

/// What a watermark message means for the session.
#[derive(Debug, PartialEq, Eq)]
pub enum Watermark {
    /// Not ours, or not the chunk in flight.
    Ignored,
    /// The window opened.
    Low,
    /// The window closed: emit [`IncrementalSnapshot::close`] at this position.
    High(Lsn),
}

impl IncrementalSnapshot {
    /// Incremental snapshots for the pipeline of `slot`, over tables it selects.
    pub fn new(slot: &str, selectors: Vec<TableSelector>, rows_per_batch: usize) -> Self {
        IncrementalSnapshot {
            slot: slot.to_owned(),
            selectors,
            queue: VecDeque::new(),
            waiting: None,
            cursor: None,
            window: None,
            sequence: 0,
            session: crate::clock::now_unix_micros(),
            rows_per_batch,
        }
    }

    /// Resumes the snapshots a restart left unfinished.
    pub fn resume(&mut self, unfinished: &[IncrementalTable]) {
        for table in unfinished {
            info!(table = %table.table, rows = table.rows, "Resuming a snapshot taken while streaming.");
            self.queue.push_back(Asked {
                table: table.table.clone(),
                joined: if table.joined {
                    Joined::Now
                } else {
                    Joined::Before
                },
                after: table.after.clone(),
            });
        }
    }

    /// A `weir_signal` message (or weir's announcement of tables it added to
    /// the publication) arrived. Returns the tables queued by it (and whether
    /// each just joined), to be recorded before the stream goes past it.
    pub fn signal(&mut self, content: &[u8], joined: Joined) -> Vec<(String, bool)> {
        let mut queued = Vec::new();
        let signal: SnapshotSignal = match serde_json::from_slice(content) {
            Ok(signal) => signal,
            Err(error) => {
                warn!(%error, "Ignoring an unreadable snapshot signal.");
                return queued;
            }
        };
        if signal.slot != self.slot {
            return queued;
        }
        for table in signal.tables {
            let selected = table.split_once('.').is_some_and(|(schema, name)| {
                self.selectors.iter().any(|s| s.matches(schema, name))
            });
            if !selected {
                warn!(%table, "A snapshot was asked for a table the pipeline does not select; ignored.");
            } else if !self.queue.iter().any(|asked| asked.table == table)
                && self.cursor.as_ref().is_none_or(|c| c.name != table)
                && self
                    .waiting
                    .as_ref()
                    .is_none_or(|w| w.writers.table != table)
            {
                info!(%table, "Snapshot of a table asked; it is read while streaming goes on.");
                queued.push((table.clone(), joined == Joined::Now));
                self.queue.push_back(Asked {
                    table,
                    joined,
                    after: None,
                });
            }
        }
        queued
    }

    /// Whether a chunk should be read now: a table is waiting and no chunk is in
    /// flight.
    pub fn wants_chunk(&self) -> bool {
        self.window.is_none()
            && (self.cursor.is_some()
                || match &self.waiting {
                    Some(waiting) => waiting.writers.next_check() <= std::time::Instant::now(),
                    None => !self.queue.is_empty(),
                })
    }

    /// When a table waiting for its earlier writers is to be looked at again.
    pub fn next_check(&self) -> Option<std::time::Instant> {
        self.waiting.as_ref().map(|w| w.writers.next_check())
    }

    /// The next table to start, once no transaction that wrote it before it
    /// joined the publication is still open.
    async fn next_table(&mut self, control: &Client) -> Result<Option<Asked>, SnapshotError> {
        if let Some(waiting) = self.waiting.as_mut() {
            let quoted = quoted_selector(&waiting.writers.table);
            if !waiting.writers.ended(control, &quoted).await? {
                return Ok(None);
            }
            return Ok(self.waiting.take().map(|waiting| waiting.asked));
        }
        let Some(asked) = self.queue.pop_front() else {
            return Ok(None);
        };
        if asked.joined == Joined::Now
            && let Some(writers) =
                Writers::holding(control, &asked.table, &quoted_selector(&asked.table)).await?
        {
            info!(table = %asked.table, "The table just joined the publication; its snapshot waits for the transactions writing it then.");
            self.waiting = Some(Waiting { writers, asked });
            return Ok(None);
        }
        Ok(Some(asked))
    }

    /// Writes the low watermark, reads the next chunk, writes the high watermark.
    /// Returns the table whose snapshot ended meanwhile (read to its end, empty,
    /// dropped, or not readable this way).
    pub async fn read_chunk(&mut self, control: &Client) -> Result<Option<String>, SnapshotError> {
        if self.cursor.is_none() {
            let Some(asked) = self.next_table(control).await? else {
                return Ok(None);
            };
            match self.start_table(control, &asked.table).await {
                Ok(Some(mut cursor)) => {
                    cursor.after = asked.after;
                    self.cursor = Some(cursor);
                }
                Ok(None) => return Ok(Some(asked.table)),
                Err(error) if is_gone(&error) => {
                    info!(table = %asked.table, "The table was dropped before its snapshot; nothing to read.");
                    return Ok(Some(asked.table));
                }
                Err(error) => return Err(error),
            }
        }
        let Some(cursor) = self.cursor.as_mut() else {
            return Ok(None);
        };
        self.sequence += 1;
        let id = format!("{}:{}:{}", self.slot, self.session, self.sequence);
        let previous = cursor.after.clone();
        emit_watermark(control, &format!("{id}:low")).await?;
        let read = match read_after(control, cursor, self.rows_per_batch).await {
            Ok(read) => read,
            Err(error) if is_gone(&error) => {
                // Its rows end with it: the stream carries the DROP (and the
                // rows streamed so far stand).
                info!(table = %cursor.name, rows = cursor.rows, "The table was dropped during its snapshot, which ends there.");
                return Ok(self.cursor.take().map(|c| c.name));
            }
            Err(error) => return Err(error),
        };
        emit_watermark(control, &format!("{id}:high")).await?;
        let Some((rows, read_under)) = read else {
            info!(table = %cursor.name, rows = cursor.rows, "Snapshot of a table complete.");
            return Ok(self.cursor.take().map(|c| c.name));
        };
        cursor.rows += rows.num_rows() as u64;
        let row_keys = key_rows(&cursor.converter, &rows, &cursor.key_fields)
            .map_err(|e| batch_error(&cursor.name, e))?;
        let keys = row_keys.iter().cloned().collect();
        self.window = Some(Window {
            id,
            open: false,
            rows,
            row_keys,
            keys,
            previous,
            read_under,
        });
        Ok(None)
    }

    /// A `weir_watermark` message at `lsn` arrived.
    pub fn watermark(&mut self, content: &[u8], lsn: Lsn) -> Watermark {
        let Some(window) = self.window.as_mut() else {
            return Watermark::Ignored;
        };
        let content = String::from_utf8_lossy(content);
        match content.strip_prefix(window.id.as_str()) {
            Some(":low") => {
                window.open = true;
                Watermark::Low
            }
            Some(":high") if window.open => Watermark::High(lsn),
            _ => Watermark::Ignored,
        }
    }

    /// A streamed batch: inside an open window, its keys (new and old) leave the
    /// chunk; before it opens, the keys of transactions the chunk's read did not
    /// see do.
    pub fn streamed(&mut self, batch: &RecordBatch) {
        let (Some(window), Some(cursor)) = (self.window.as_mut(), self.cursor.as_ref()) else {
            return;
        };
        if qualified_table_name(batch.schema_ref()) != cursor.name {
            return;
        }
        let unseen;
        let batch = if window.open {
            batch
        } else {
            match unseen_rows(batch, &window.read_under) {
                Ok(Some(rows)) => {
                    unseen = rows;
                    &unseen
                }
                Ok(None) => return,
                Err(error) => {
                    warn!(%error, table = %cursor.name, "Could not tell which streamed rows the snapshot chunk saw; the chunk is read again.");
                    self.reread();
                    return;
                }
            }
        };
        let mut seen = match key_rows(&cursor.converter, batch, &cursor.key_fields) {
            Ok(keys) => keys,
            Err(error) => {
                warn!(%error, table = %cursor.name, "Could not compare streamed keys with the snapshot chunk; the chunk is read again.");
                self.reread();
                return;
            }
        };
        // An update that changed the key also retires the old key.
        if let Some(before) = batch.column_by_name(BEFORE).and_then(|c| c.as_struct_opt()) {
            match old_keys(&cursor.converter, before, &cursor.key_fields) {
                Ok(old) => seen.extend(old),
                Err(error) => warn!(%error, "Could not read old keys of a streamed batch."),
            }
        }
        for key in seen {
            window.keys.remove(&key);
        }
    }

    /// The high watermark streamed past at `lsn`: the chunk's rows no streamed
    /// change superseded, as snapshot reads positioned at `lsn`.
    pub fn close(&mut self, lsn: Lsn) -> Result<Option<ClosedChunk>, SnapshotError> {
        let Some(window) = self.window.take() else {
            return Ok(None);
        };
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let Some(after) = cursor.after.clone() else {
            return Ok(None);
        };
        let keep: BooleanArray = window
            .row_keys
            .iter()
            .map(|key| Some(window.keys.contains(key)))
            .collect();
        let kept =
            filter_record_batch(&window.rows, &keep).map_err(|e| batch_error(&cursor.name, e))?;
        let rows = if kept.num_rows() == 0 {
            None
        } else {
            Some(at_position(&kept, lsn).map_err(|e| batch_error(&cursor.name, e))?)
        };
        Ok(Some(ClosedChunk {
            table: cursor.name.clone(),
            after,
            rows,
        }))
    }

    /// Forgets the chunk in flight; the table goes on from before it.
    fn reread(&mut self) {
        if let (Some(window), Some(cursor)) = (self.window.take(), self.cursor.as_mut()) {
            cursor.after = window.previous;
        }
    }

    async fn start_table(
        &mut self,
        control: &Client,
        name: &str,
    ) -> Result<Option<Cursor>, SnapshotError> {
        let Some((schema, table)) = name.split_once('.') else {
            return Ok(None);
        };
        let table = describe(control, schema, table).await?;
        let key_fields = table.schema.primary_key.clone();
        if key_fields.is_empty() {
            warn!(table = %name, "A table without a primary key cannot be snapshotted while streaming; skipped.");
            return Ok(None);
        }
        let arrow = table.schema.arrow_schema();
        let fields = key_fields
            .iter()
            .map(|field| {
                arrow
                    .field_with_name(field)
                    .map(|f| SortField::new(f.data_type().clone()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| batch_error(name, e))?;
        let converter = RowConverter::new(fields).map_err(|e| batch_error(name, e))?;
        let columns = key_columns(&table, &key_fields);
        let greatest = control
            .query_opt(&greatest_key(&columns, &table.quoted_name(), "true"), &[])
            .await
            .map_err(|source| SnapshotError::Postgres {
                table: name.to_owned(),
                source,
            })?;
        let Some(greatest) = greatest else {
            info!(table = %name, "The table is empty; nothing to snapshot.");
            return Ok(None);
        };
        let last = (0..columns.len())
            .map(|i| quote_literal(&greatest.get::<_, String>(i)))
            .collect();
        info!(table = %name, "Snapshot of a table starts, chunk by chunk between streamed changes.");
        Ok(Some(Cursor {
            table,
            name: name.to_owned(),
            converter,
            key_fields,
            after: None,
            last,
            rows: 0,
        }))
    }
}

/// `"schema"."table"` from `schema.table`, for `to_regclass`.
fn quoted_selector(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => quote_qualified(schema, table),
        None => quote_identifier(name),
    }
}

/// The key's columns, quoted, in key order.
fn key_columns(table: &SnapshotTable, key_fields: &[String]) -> Vec<String> {
    key_fields
        .iter()
        .filter_map(|field| {
            table
                .schema
                .columns
                .iter()
                .find(|c| &c.field_name == field)
                .map(|c| quote_identifier(&c.name))
        })
        .collect()
}

async fn emit_watermark(control: &Client, content: &str) -> Result<(), SnapshotError> {
    control
        .execute(
            "SELECT pg_logical_emit_message(false, $1, $2)",
            &[&WATERMARK_PREFIX, &content],
        )
        .await
        .map_err(|source| SnapshotError::Postgres {
            table: "(watermark)".to_owned(),
            source,
        })?;
    Ok(())
}

/// Reads the chunk after `cursor`'s last key and moves the cursor, in one
/// `REPEATABLE READ` transaction so the rows and the new cursor agree. `None`:
/// the table is done.
async fn read_after(
    control: &Client,
    cursor: &mut Cursor,
    rows_per_batch: usize,
) -> Result<Option<(RecordBatch, FirstSnapshot)>, SnapshotError> {
    let name = cursor.name.clone();
    let failed = |source| SnapshotError::Postgres {
        table: name.clone(),
        source,
    };
    let columns = key_columns(&cursor.table, &cursor.key_fields);
    let key = format!("({})", columns.join(", "));
    let after = match &cursor.after {
        Some(values) => format!("{key} > ({})", values.join(", ")),
        None => "true".to_owned(),
    };
    let condition = format!(
        "{after} AND {key} <= ({}) ORDER BY {key} LIMIT {CHUNK_ROWS}",
        cursor.last.join(", ")
    );
    control
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(failed)?;
    let read = async {
        // The transaction's snapshot, taken by this first statement: the
        // reads below see exactly what it sees.
        let snapshot: String = control
            .query_one("SELECT pg_current_snapshot()::text", &[])
            .await
            .map_err(failed)?
            .get(0);
        let (sender, mut receiver) =
            mpsc::channel::<RecordBatch>(CHUNK_ROWS / rows_per_batch.max(1) + 2);
        let meta = RowMeta {
            op: op::READ,
            lsn: Lsn::ZERO,
            commit_lsn: Lsn::ZERO,
            xid: 0,
            commit_time_micros: crate::clock::now_unix_micros(),
            seq: 0,
        };
        let collect = async {
            let mut batches = Vec::new();
            while let Some(batch) = receiver.recv().await {
                batches.push(batch);
            }
            batches
        };
        let (read, batches) = tokio::join!(
            async {
                let read = read_where(
                    control,
                    &cursor.table,
                    &condition,
                    meta,
                    rows_per_batch,
                    &sender,
                )
                .await;
                drop(sender);
                read
            },
            collect
        );
        read?;
        // The last key of this chunk, as literals, from the same snapshot.
        let last = control
            .query_opt(
                &greatest_key(&columns, &cursor.table.quoted_name(), &condition),
                &[],
            )
            .await
            .map_err(failed)?;
        Ok::<_, SnapshotError>((batches, last, snapshot))
    };
    let result = read.await;
    control.batch_execute("COMMIT").await.map_err(failed)?;
    let (batches, last, snapshot) = result?;
    let snapshot: FirstSnapshot = snapshot.parse().map_err(SnapshotError::FirstSnapshot)?;
    let Some(last) = last else {
        return Ok(None);
    };
    cursor.after = Some(
        (0..columns.len())
            .map(|i| quote_literal(&last.get::<_, String>(i)))
            .collect(),
    );
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    concat_batches(&first.schema(), &batches)
        .map(|rows| Some((rows, snapshot)))
        .map_err(|e| batch_error(&name, e))
}

/// The rows of `batch` whose transaction `snapshot` did not see; `None` when it
/// saw them all.
fn unseen_rows(
    batch: &RecordBatch,
    snapshot: &FirstSnapshot,
) -> Result<Option<RecordBatch>, arrow::error::ArrowError> {
    let xids = batch
        .column_by_name(XID)
        .and_then(|c| c.as_primitive_opt::<UInt32Type>())
        .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no {XID} column")))?;
    let unseen: BooleanArray = xids
        .iter()
        .map(|xid| Some(xid.is_some_and(|xid| !snapshot.sees(xid))))
        .collect();
    if unseen.true_count() == 0 {
        return Ok(None);
    }
    filter_record_batch(batch, &unseen).map(Some)
}

/// Whether a snapshot failed because its table is gone (dropped meanwhile).
fn is_gone(error: &SnapshotError) -> bool {
    match error {
        SnapshotError::Missing(_) => true,
        SnapshotError::Postgres { source, .. } => {
            source.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
        }
        _ => false,
    }
}

/// The query of the greatest key of the rows matching `condition`, as text.
fn greatest_key(columns: &[String], relation: &str, condition: &str) -> String {
    // Qualified, or ORDER BY would sort the text outputs of the same names.
    let text: Vec<String> = columns.iter().map(|c| format!("chunk.{c}::text")).collect();
    let order: Vec<String> = columns.iter().map(|c| format!("chunk.{c}")).collect();
    format!(
        "SELECT {} FROM (SELECT {} FROM {relation} WHERE {condition}) chunk \
         ORDER BY ({}) DESC LIMIT 1",
        text.join(", "),
        columns.join(", "),
        order.join(", ")
    )
}

/// The key columns of `batch` in row format.
fn key_rows(
    converter: &RowConverter,
    batch: &RecordBatch,
    fields: &[String],
) -> Result<Vec<Box<[u8]>>, arrow::error::ArrowError> {
    let columns = fields
        .iter()
        .map(|field| {
            batch.column_by_name(field).cloned().ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("no key column {field}"))
            })
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    rows_of(converter, &columns)
}

/// The old keys of updates whose `_before` holds them.
fn old_keys(
    converter: &RowConverter,
    before: &StructArray,
    fields: &[String],
) -> Result<Vec<Box<[u8]>>, arrow::error::ArrowError> {
    let columns = fields
        .iter()
        .map(|field| {
            before.column_by_name(field).cloned().ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("no old key column {field}"))
            })
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    let rows = rows_of(converter, &columns)?;
    Ok(rows
        .into_iter()
        .enumerate()
        .filter(|(row, _)| before.is_valid(*row))
        .map(|(_, key)| key)
        .collect())
}

fn rows_of(
    converter: &RowConverter,
    columns: &[ArrayRef],
) -> Result<Vec<Box<[u8]>>, arrow::error::ArrowError> {
    let rows = converter.convert_columns(columns)?;
    Ok(rows.iter().map(|row| row.as_ref().into()).collect())
}

/// `batch` with `_lsn` and `_commit_lsn` set to `lsn`.
fn at_position(batch: &RecordBatch, lsn: Lsn) -> Result<RecordBatch, arrow::error::ArrowError> {
    let positions: ArrayRef = Arc::new(UInt64Array::from(vec![lsn.0; batch.num_rows()]));
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            if field.name() == LSN || field.name() == COMMIT_LSN {
                Arc::clone(&positions)
            } else {
                Arc::clone(column)
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

fn batch_error(table: &str, error: arrow::error::ArrowError) -> SnapshotError {
    SnapshotError::Arrow {
        table: table.to_owned(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_round_trips_through_its_sql() {
        let signal = SnapshotSignal {
            slot: "s".into(),
            tables: vec!["public.o'rders".into()],
        };
        let sql = signal.sql().expect("sql");
        assert!(sql.starts_with("SELECT pg_logical_emit_message(false, 'weir_signal', "));
        assert!(sql.contains("o''rders"), "{sql}");
    }

    /// Rows of transactions a chunk's snapshot saw running (or not yet begun)
    /// are the ones that supersede its rows before the window opens.
    #[test]
    fn rows_the_chunk_did_not_see_are_picked_by_their_transaction() {
        use arrow::array::UInt32Array;
        use arrow::datatypes::{DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new(XID, DataType::UInt32, false),
            Field::new("id", DataType::UInt64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt32Array::from(vec![739, 741, 742, 900])) as ArrayRef,
                Arc::new(UInt64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .expect("batch");
        let snapshot: FirstSnapshot = "740:745:741,743".parse().expect("snapshot");
        let unseen = unseen_rows(&batch, &snapshot)
            .expect("xids")
            .expect("some unseen");
        let ids = unseen
            .column(1)
            .as_primitive::<arrow::datatypes::UInt64Type>();
        assert_eq!(ids.values().to_vec(), [2, 4]);
        let all_seen: FirstSnapshot = "1000:1000:".parse().expect("snapshot");
        assert!(unseen_rows(&batch, &all_seen).expect("xids").is_none());
    }
}
