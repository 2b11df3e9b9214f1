//! Where things are in a ChangeBatch: metadata columns, user columns (with their
//! PostgreSQL names), the old image, unchanged-TOAST lists, the key and the routing
//! columns a plugin may have added. Worked out once per batch from the schema.

use arrow::array::{Array, AsArray, ListArray, StructArray, UInt8Array, UInt16Array};
use arrow::datatypes::{Schema, UInt8Type};
use arrow::record_batch::RecordBatch;

use super::EncodeError;
use super::value::{ColumnWriter, ValueOptions, field_prefix, string};
use crate::contract::columns::{
    BEFORE, COMMIT_LSN, COMMIT_TS, LSN, OP, SEQ, UNCHANGED, XID, metadata,
};

pub use crate::contract::columns::{MetadataColumns, ROUTING_COLUMNS};

/// A user column: its index in the batch and its name in PostgreSQL.
#[derive(Debug, Clone)]
pub struct UserColumn {
    /// Index in the batch.
    pub index: usize,
    /// The PostgreSQL column name (escaped field names undone).
    pub name: String,
    /// Index of the same column among `_before`'s children, when there.
    pub before_child: Option<usize>,
    /// `"name":` as JSON, written before each value.
    pub json_prefix: Vec<u8>,
    /// Declared `NOT NULL` (`weir.not_null`): required in declared schemas.
    pub required: bool,
}

/// The layout of one batch.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `_op`, `_lsn`, `_commit_lsn`, `_xid`, `_commit_ts`, `_seq`, by index.
    pub op: usize,
    #[allow(missing_docs)]
    pub lsn: usize,
    #[allow(missing_docs)]
    pub commit_lsn: usize,
    #[allow(missing_docs)]
    pub xid: usize,
    #[allow(missing_docs)]
    pub commit_ts: usize,
    #[allow(missing_docs)]
    pub seq: usize,
    /// User columns in batch order.
    pub columns: Vec<UserColumn>,
    /// `_before`, when present.
    pub before: Option<usize>,
    /// `_unchanged`, when present.
    pub unchanged: Option<usize>,
    /// Positions in `columns` of the primary key, in key order; empty when unknown.
    pub key: Vec<usize>,
    /// `weir.schema` and `weir.table`.
    pub schema_name: String,
    #[allow(missing_docs)]
    pub table_name: String,
}

impl Layout {
    /// Writes the primary key's column names as a JSON array (`["id","region"]`),
    /// as Canal's `pkNames` and Maxwell's `primary_key_columns` carry them.
    pub fn write_key_names(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, &position) in self.key.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(&self.columns[position].name, out);
        }
        out.push(b']');
    }

    /// The layout of `schema`.
    pub fn new(schema: &Schema) -> Result<Self, EncodeError> {
        let index = |name: &str| {
            schema
                .index_of(name)
                .map_err(|_| EncodeError::MissingColumn(name.to_owned()))
        };
        let before = schema.index_of(BEFORE).ok();
        let before_fields = before.and_then(|i| match schema.field(i).data_type() {
            arrow::datatypes::DataType::Struct(fields) => Some(fields.clone()),
            _ => None,
        });
        let columns: Vec<UserColumn> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, field)| {
                !field.name().starts_with('_')
                    || field.metadata().contains_key(metadata::COLUMN_NAME)
            })
            .filter(|(_, field)| !ROUTING_COLUMNS.contains(&field.name().as_str()))
            .map(|(index, field)| {
                let name = field
                    .metadata()
                    .get(metadata::COLUMN_NAME)
                    .cloned()
                    .unwrap_or_else(|| field.name().clone());
                UserColumn {
                    index,
                    json_prefix: field_prefix(&name),
                    required: field
                        .metadata()
                        .get(metadata::NOT_NULL)
                        .is_some_and(|v| v == "true"),
                    name,
                    before_child: before_fields.as_ref().and_then(|children| {
                        children.iter().position(|c| c.name() == field.name())
                    }),
                }
            })
            .collect();
        let meta = |key: &str| schema.metadata().get(key).cloned().unwrap_or_default();
        let key = meta(metadata::PRIMARY_KEY)
            .split(',')
            .filter(|name| !name.is_empty())
            .filter_map(|name| {
                columns
                    .iter()
                    .position(|c| schema.field(c.index).name() == name)
            })
            .collect();
        Ok(Self {
            op: index(OP)?,
            lsn: index(LSN)?,
            commit_lsn: index(COMMIT_LSN)?,
            xid: index(XID)?,
            commit_ts: index(COMMIT_TS)?,
            seq: index(SEQ)?,
            columns,
            before,
            unchanged: schema.index_of(UNCHANGED).ok(),
            key,
            schema_name: meta(metadata::SCHEMA),
            table_name: meta(metadata::TABLE),
        })
    }

    /// The `_op` column.
    pub fn ops<'a>(&self, batch: &'a RecordBatch) -> Result<&'a UInt8Array, EncodeError> {
        batch
            .column(self.op)
            .as_primitive_opt::<UInt8Type>()
            .ok_or_else(|| EncodeError::MissingColumn(OP.to_owned()))
    }

    /// The metadata columns every message needs, typed; a batch whose metadata a
    /// plugin replaced with another type is an error, not a panic.
    pub fn metadata<'a>(&self, batch: &'a RecordBatch) -> Result<MetadataColumns<'a>, EncodeError> {
        MetadataColumns::of(batch).map_err(|missing| EncodeError::MissingColumn(missing.0))
    }

    /// The `_before` column.
    pub fn before<'a>(&self, batch: &'a RecordBatch) -> Option<&'a StructArray> {
        self.before.and_then(|i| batch.column(i).as_struct_opt())
    }

    /// A writer for each user column of `batch`, in `columns` order.
    pub fn writers<'a>(&self, batch: &'a RecordBatch) -> Vec<ColumnWriter<'a>> {
        let schema = batch.schema_ref();
        self.columns
            .iter()
            .map(|c| ColumnWriter::new(schema.field(c.index), batch.column(c.index)))
            .collect()
    }

    /// A writer for each user column's old value (`None` without an old image).
    pub fn before_writers<'a>(&self, batch: &'a RecordBatch) -> Vec<Option<ColumnWriter<'a>>> {
        let before = self.before(batch);
        self.columns
            .iter()
            .map(|c| {
                let before = before?;
                let child = c.before_child?;
                Some(ColumnWriter::new(
                    &before.fields()[child],
                    before.column(child),
                ))
            })
            .collect()
    }

    /// The primary key of `row` as a JSON object, values as JSON (`options`) or, for
    /// Canal, in their text form (`None`).
    pub fn write_key(
        &self,
        writers: &[ColumnWriter<'_>],
        row: usize,
        options: Option<&ValueOptions>,
        buffer: &mut Vec<u8>,
    ) {
        buffer.push(b'{');
        for (i, &position) in self.key.iter().enumerate() {
            if i > 0 {
                buffer.push(b',');
            }
            buffer.extend_from_slice(&self.columns[position].json_prefix);
            match options {
                Some(options) => writers[position].write(row, options, buffer),
                None => writers[position].write_text(row, buffer),
            }
        }
        buffer.push(b'}');
    }

    /// The old primary key of `row` from its old image, as [`Layout::write_key`]
    /// writes the new one; `false` (nothing written) when the old image lacks a key
    /// column.
    pub fn write_old_key(
        &self,
        before_writers: &[Option<ColumnWriter<'_>>],
        row: usize,
        options: &ValueOptions,
        buffer: &mut Vec<u8>,
    ) -> bool {
        if self
            .key
            .iter()
            .any(|&position| before_writers[position].is_none())
        {
            return false;
        }
        buffer.push(b'{');
        for (i, &position) in self.key.iter().enumerate() {
            if i > 0 {
                buffer.push(b',');
            }
            buffer.extend_from_slice(&self.columns[position].json_prefix);
            if let Some(writer) = &before_writers[position] {
                writer.write(row, options, buffer);
            }
        }
        buffer.push(b'}');
        true
    }

    /// Whether `row`'s old image holds another primary key than the row: a key
    /// change, which Debezium writes as a delete and a create. Leaves both keys'
    /// JSON in `keys` (old, new) for the messages' headers.
    pub fn key_changed(
        &self,
        (before_writers, writers): (&[Option<ColumnWriter<'_>>], &[ColumnWriter<'_>]),
        row: usize,
        options: &ValueOptions,
        (old_key, new_key): (&mut Vec<u8>, &mut Vec<u8>),
    ) -> bool {
        old_key.clear();
        new_key.clear();
        if !self.write_old_key(before_writers, row, options, old_key) {
            return false;
        }
        self.write_key(writers, row, Some(options), new_key);
        old_key != new_key
    }

    /// The `_unchanged` column.
    pub fn unchanged<'a>(&self, batch: &'a RecordBatch) -> Option<&'a ListArray> {
        self.unchanged
            .and_then(|i| batch.column(i).as_list_opt::<i32>())
    }
}

/// Whether user column `position` (index among the table's columns as the source
/// numbered them) was left unchanged in TOAST at `row`.
pub fn is_unchanged(unchanged: Option<&ListArray>, row: usize, position: usize) -> bool {
    let Some(list) = unchanged else {
        return false;
    };
    if list.is_null(row) {
        return false;
    }
    let values = list.value(row);
    values
        .as_any()
        .downcast_ref::<UInt16Array>()
        .is_some_and(|indexes| indexes.values().iter().any(|i| usize::from(*i) == position))
}
