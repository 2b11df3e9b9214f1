//! Reading one table under the snapshot the caller's transaction holds: its shape
//! from the catalog (the same [`TableSchema`] a pgoutput `Relation` message would
//! give), then its rows through binary `COPY … TO STDOUT` into ChangeBatches.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_postgres::Client;
use weir_pgoutput::{Oid, Relation, RelationColumn, ReplicaIdentity};

use super::copy_binary::{CopyBinaryRows, CopyFormatError};
use crate::batch::{BatchError, CatalogFacts, ChangeBatchBuilder, RowMeta, TableSchema};
use crate::contract::sql::{output_text, quote_identifier, quote_qualified};
use crate::source::replication::session_settings_sql;

/// Reading a table failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The catalog or the `COPY` failed.
    #[error("snapshot of {table}: {source}")]
    Postgres {
        /// `schema.table`.
        table: String,
        /// Why.
        source: tokio_postgres::Error,
    },
    /// The table does not exist (any more).
    #[error("snapshot: table {0} does not exist")]
    Missing(String),
    /// A row did not fit the table's shape.
    #[error("snapshot of {table}: {source}")]
    Batch {
        /// `schema.table`.
        table: String,
        /// Why.
        source: BatchError,
    },
    /// The `COPY` stream ended in the middle of a row.
    #[error("snapshot of {0}: the COPY stream ended before its end marker")]
    Truncated(String),
    /// A snapshot connection could not be opened.
    #[error("snapshot connection: {0}")]
    Connect(String),
    /// Arranging the rows read failed.
    #[error("snapshot of {table}: {message}")]
    Arrow {
        /// `schema.table`.
        table: String,
        /// Why.
        message: String,
    },
    /// Whoever consumes the batches went away.
    #[error("snapshot: the consumer of its batches stopped")]
    Closed,
    /// The recorded progress names a first snapshot that is not one.
    #[error("snapshot progress: {0}")]
    FirstSnapshot(#[from] super::visibility::SnapshotTextError),
}

/// A table as the snapshot reads it.
#[derive(Debug, Clone)]
pub struct SnapshotTable {
    /// Its schema, as streaming would build it.
    pub schema: Arc<TableSchema>,
}

impl SnapshotTable {
    /// `schema.table`.
    pub fn name(&self) -> String {
        format!("{}.{}", self.schema.namespace, self.schema.name)
    }

    /// `"schema"."table"`, for SQL.
    pub fn quoted_name(&self) -> String {
        quote_qualified(&self.schema.namespace, &self.schema.name)
    }
}

/// Reads `schema.table`'s shape from the catalog: columns (generated ones left out,
/// as pgoutput and `COPY` leave them out), types, replica identity and primary key.
pub async fn describe(
    client: &Client,
    schema: &str,
    table: &str,
) -> Result<SnapshotTable, SnapshotError> {
    let qualified = format!("{schema}.{table}");
    let failed = |source| SnapshotError::Postgres {
        table: qualified.clone(),
        source,
    };
    let relation = client
        .query_opt(
            "SELECT c.oid, c.relreplident FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await
        .map_err(failed)?
        .ok_or_else(|| SnapshotError::Missing(qualified.clone()))?;
    let oid: Oid = relation.get(0);
    let identity: i8 = relation.get(1);
    let replica_identity = match u8::try_from(identity).unwrap_or(b'd') {
        b'n' => ReplicaIdentity::Nothing,
        b'f' => ReplicaIdentity::Full,
        b'i' => ReplicaIdentity::Index,
        _ => ReplicaIdentity::Default,
    };
    // Key flags as pgoutput sets them: the replica identity's columns.
    let rows = client
        .query(
            "SELECT a.attname::text, a.atttypid, a.atttypmod, t.typname::text, \
                    COALESCE(a.attnum = ANY (ri.indkey), false), a.attnotnull, \
                    COALESCE((SELECT k.n FROM unnest(pk.indkey) WITH ORDINALITY k(attnum, n) \
                              WHERE k.attnum = a.attnum), 0)::int4, \
                    CASE WHEN t.typtype = 'd' THEN t.typbasetype END, t.typtypmod, \
                    CASE WHEN t.typtype = 'e' THEN (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) \
                                                    FROM pg_enum e WHERE e.enumtypid = t.oid) END \
             FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary \
             LEFT JOIN pg_index ri ON ri.indrelid = a.attrelid AND \
                 CASE $2::text WHEN 'd' THEN ri.indisprimary WHEN 'i' THEN ri.indisreplident ELSE false END \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
             ORDER BY a.attnum",
            &[&oid, &char::from(u8::try_from(identity).unwrap_or(b'd')).to_string()],
        )
        .await
        .map_err(failed)?;
    let mut type_names = HashMap::new();
    let mut primary_key: Vec<(i32, String)> = Vec::new();
    let mut not_null = Vec::new();
    let mut domains = Vec::new();
    let mut enums = Vec::new();
    let columns = rows
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            let type_oid: Oid = row.get(1);
            type_names.insert(type_oid, row.get::<_, String>(3));
            if row.get::<_, bool>(5) {
                not_null.push(name.clone());
            }
            if let Some(base) = row.get::<_, Option<Oid>>(7) {
                domains.push((name.clone(), base, row.get::<_, i32>(8)));
            }
            if let Some(labels) = row.get::<_, Option<Vec<String>>>(9) {
                enums.push((name.clone(), labels));
            }
            let in_key: i32 = row.get(6);
            if in_key > 0 {
                primary_key.push((in_key, name.clone()));
            }
            RelationColumn {
                is_key: replica_identity == ReplicaIdentity::Full || row.get::<_, bool>(4),
                name,
                type_oid,
                type_modifier: row.get(2),
            }
        })
        .collect();
    primary_key.sort();
    let primary_key: Vec<String> = primary_key.into_iter().map(|(_, name)| name).collect();
    let relation = Relation {
        xid: None,
        oid,
        namespace: schema.to_owned(),
        name: table.to_owned(),
        replica_identity,
        columns,
    };
    let facts = CatalogFacts {
        primary_key,
        not_null,
        domains,
        enums,
    };
    let schema = TableSchema::from_relation(&relation, &type_names, Some(&facts), 1);
    Ok(SnapshotTable {
        schema: Arc::new(schema),
    })
}

/// Reads every row of `table` (under the snapshot of `client`'s transaction) as
/// snapshot reads (`_op = r`) with `meta`'s positions, in batches of `rows_per_batch`
/// rows sent to `out` as they fill: a slow consumer slows the read, so memory
/// stays at a few batches whatever the table's size.
pub async fn read<T: From<RecordBatch>>(
    client: &Client,
    table: &SnapshotTable,
    meta: RowMeta,
    rows_per_batch: usize,
    out: &mpsc::Sender<T>,
) -> Result<u64, SnapshotError> {
    read_where(client, table, "true", meta, rows_per_batch, out).await
}

/// [`read`], of the rows matching SQL `condition` (a chunk of the table).
pub async fn read_where<T: From<RecordBatch>>(
    client: &Client,
    table: &SnapshotTable,
    condition: &str,
    meta: RowMeta,
    rows_per_batch: usize,
    out: &mpsc::Sender<T>,
) -> Result<u64, SnapshotError> {
    let name = table.name();
    let batch_error = |source| SnapshotError::Batch {
        table: name.clone(),
        source,
    };
    // The columns by name (`SELECT *` would include generated columns): the
    // binary form of those whose binary form weir reads, the text form of the
    // others, as pgoutput sends it.
    let columns: Vec<String> = table
        .schema
        .columns
        .iter()
        .map(|c| {
            let name = quote_identifier(&c.name);
            if c.kind.reads_binary() {
                name
            } else {
                output_text(&name)
            }
        })
        .collect();
    let text: Vec<bool> = table
        .schema
        .columns
        .iter()
        .map(|c| !c.kind.reads_binary())
        .collect();
    let copy = format!(
        "COPY (SELECT {} FROM {} WHERE {condition}) TO STDOUT (FORMAT binary)",
        columns.join(", "),
        table.quoted_name()
    );
    // The text forms as pgoutput sends them: the same parsers read both.
    client
        .batch_execute(&session_settings_sql())
        .await
        .map_err(|source| SnapshotError::Postgres {
            table: name.clone(),
            source,
        })?;
    let stream =
        client
            .copy_out(copy.as_str())
            .await
            .map_err(|source| SnapshotError::Postgres {
                table: name.clone(),
                source,
            })?;
    let mut stream = std::pin::pin!(stream);
    let mut builder =
        ChangeBatchBuilder::new(Arc::clone(&table.schema), rows_per_batch).map_err(batch_error)?;
    let mut rows = CopyBinaryRows::new(text);
    let format_error = |error: CopyFormatError| SnapshotError::Arrow {
        table: name.clone(),
        message: error.to_string(),
    };
    let mut count: u64 = 0;
    let mut meta = RowMeta {
        op: crate::contract::columns::op::READ,
        ..meta
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| SnapshotError::Postgres {
            table: name.clone(),
            source,
        })?;
        rows.push(&chunk);
        while let Some(tuple) = rows.next_row().map_err(format_error)? {
            meta.seq = u32::try_from(count).unwrap_or(u32::MAX);
            builder.append(&meta, &tuple, None).map_err(batch_error)?;
            count += 1;
            while let Some(batch) = builder.take_ready() {
                out.send(T::from(batch))
                    .await
                    .map_err(|_| SnapshotError::Closed)?;
            }
            if builder.len() >= rows_per_batch
                && let Some(batch) = builder.finish().map_err(batch_error)?
            {
                out.send(T::from(batch))
                    .await
                    .map_err(|_| SnapshotError::Closed)?;
            }
        }
    }
    if rows.is_incomplete() {
        return Err(SnapshotError::Truncated(name));
    }
    while let Some(batch) = builder.take_ready() {
        out.send(T::from(batch))
            .await
            .map_err(|_| SnapshotError::Closed)?;
    }
    if let Some(batch) = builder.finish().map_err(batch_error)? {
        out.send(T::from(batch))
            .await
            .map_err(|_| SnapshotError::Closed)?;
    }
    Ok(count)
}
