//! What the formats of row-image consumers (`canal-json`, `maxwell-json`) share:
//! which value each column of a row carries in `data`, and which columns an update's
//! `old` lists, under either replica identity.
//!
//! - A delete's `data` is the old row: the full old image, or the key PostgreSQL sent.
//! - An unchanged TOAST value is not in the WAL's new row. The full old image
//!   (`REPLICA IDENTITY FULL`) holds it; without one weir does not know it and writes
//!   Debezium's placeholder, rather than a null a consumer would store over the value.
//! - An update's `old` lists the changed columns with their old values under `FULL`;
//!   otherwise only a changed primary key (PostgreSQL sends the old key then).

use arrow::array::{Array, ListArray, RecordBatch, StructArray};
use arrow::datatypes::DataType;

use super::layout::{Layout, is_unchanged};
use super::value::{ColumnWriter, TimestamptzForm, UNAVAILABLE_PLACEHOLDER, base64, string};
use crate::contract::columns::{metadata, op};

/// The value a column carries in `data`.
enum Cell<'w, 'a> {
    /// This writer's value at the row.
    Value(&'w ColumnWriter<'a>),
    /// An unchanged TOAST value weir does not know.
    Unavailable {
        /// A `bytea` column: the placeholder's bytes in base64.
        bytes: bool,
    },
}

/// Which row of a change a message's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Image {
    /// The row after the change.
    New,
    /// The row before it.
    Old,
}

/// A batch's new and old row images, as these formats read them.
pub(crate) struct RowImages<'a> {
    /// The new values, in `Layout::columns` order.
    pub(crate) writers: Vec<ColumnWriter<'a>>,
    /// The old values (`None` for a column without one).
    pub(crate) before_writers: Vec<Option<ColumnWriter<'a>>>,
    before: Option<&'a StructArray>,
    before_columns: Vec<Option<&'a dyn Array>>,
    unchanged: Option<&'a ListArray>,
    full_identity: bool,
    is_bytes: Vec<bool>,
}

impl<'a> RowImages<'a> {
    pub(crate) fn new(layout: &Layout, batch: &'a RecordBatch) -> Self {
        let schema = batch.schema_ref();
        let before = layout.before(batch);
        Self {
            writers: layout.writers(batch),
            before_writers: layout.before_writers(batch),
            before,
            before_columns: layout
                .columns
                .iter()
                .map(|c| Some(before?.column(c.before_child?).as_ref()))
                .collect(),
            unchanged: layout.unchanged(batch),
            full_identity: schema
                .metadata()
                .get(metadata::REPLICA_IDENTITY)
                .is_some_and(|identity| identity == "full"),
            is_bytes: layout
                .columns
                .iter()
                .map(|c| {
                    matches!(
                        schema.field(c.index).data_type(),
                        DataType::Binary | DataType::LargeBinary
                    )
                })
                .collect(),
        }
    }

    fn has_before(&self, row: usize) -> bool {
        self.before.is_some_and(|b| b.is_valid(row))
    }

    fn full_image(&self, row: usize) -> bool {
        self.full_identity && self.has_before(row)
    }

    /// The writer of column `position`'s value in `data`, before TOAST is looked at:
    /// the old row's for a delete that has one, else the new row's.
    pub(crate) fn row_writer(&self, row: usize, position: usize, change: u8) -> &ColumnWriter<'a> {
        match &self.before_writers[position] {
            Some(old) if change == op::DELETE && self.has_before(row) => old,
            _ => &self.writers[position],
        }
    }

    /// The writer of column `position`'s value in `image` at `row`, `None` when
    /// PostgreSQL did not send it: an old row's non-key columns without `REPLICA
    /// IDENTITY FULL`, a TOASTed value an update left unchanged. For formats that
    /// leave unknown values out (`shareplex-json`, `oms-json`) rather than write a
    /// placeholder. An update that kept its key has no old key in the WAL: the new
    /// row's is the same.
    pub(crate) fn known(
        &self,
        key: &[usize],
        row: usize,
        position: usize,
        change: u8,
        image: Image,
    ) -> Option<&ColumnWriter<'a>> {
        let is_key = key.contains(&position);
        match image {
            Image::Old => match &self.before_writers[position] {
                Some(old) if self.has_before(row) && (self.full_identity || is_key) => Some(old),
                // A delete's row is its old key or row.
                _ if is_key && matches!(change, op::UPDATE | op::DELETE) => {
                    Some(&self.writers[position])
                }
                _ => None,
            },
            Image::New => {
                let writer = &self.writers[position];
                let left_out = change == op::UPDATE
                    && writer.is_null(row)
                    && is_unchanged(self.unchanged, row, position);
                (!left_out).then_some(writer)
            }
        }
    }

    /// What column `position` of `row` carries in `data`.
    fn data(&self, row: usize, position: usize, change: u8) -> Cell<'_, 'a> {
        let writer = self.row_writer(row, position, change);
        if change == op::UPDATE
            && writer.is_null(row)
            && is_unchanged(self.unchanged, row, position)
        {
            return match &self.before_writers[position] {
                Some(old) if self.full_image(row) => Cell::Value(old),
                _ => Cell::Unavailable {
                    bytes: self.is_bytes[position],
                },
            };
        }
        Cell::Value(writer)
    }

    /// The columns an update's `old` lists at `row`, with their old values' writers.
    fn old_columns<'s>(
        &'s self,
        layout: &'s Layout,
        batch: &'s RecordBatch,
        row: usize,
    ) -> impl Iterator<Item = (usize, &'s ColumnWriter<'a>)> + 's {
        let full_image = self.full_image(row);
        let has_before = self.has_before(row);
        layout
            .columns
            .iter()
            .enumerate()
            .filter_map(move |(position, column)| {
                let old_writer = self.before_writers[position].as_ref()?;
                let old_array = self.before_columns[position]?;
                let listed = if full_image {
                    !is_unchanged(self.unchanged, row, position)
                } else {
                    has_before && layout.key.contains(&position)
                };
                let changed = !equal_at(batch.column(column.index).as_ref(), old_array, row);
                (listed && changed).then_some((position, old_writer))
            })
    }
}

impl RowImages<'_> {
    /// Writes `data`'s members for `row` (`"column":value,…`, without braces), each
    /// value through `write`, an unavailable one as Debezium's placeholder.
    pub(crate) fn write_data(
        &self,
        layout: &Layout,
        row: usize,
        change: u8,
        write: impl Fn(&ColumnWriter<'_>, usize, &mut Vec<u8>),
        out: &mut Vec<u8>,
    ) {
        for (position, column) in layout.columns.iter().enumerate() {
            if position > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&column.json_prefix);
            match self.data(row, position, change) {
                Cell::Value(writer) => write(writer, row, out),
                Cell::Unavailable { bytes } => write_unavailable(bytes, out),
            }
        }
    }

    /// Writes the members of `image` at `row` whose values PostgreSQL sent
    /// ([`RowImages::known`]), `"column":value,…` without braces, values in
    /// `canal-json`'s forms.
    pub(crate) fn write_known(
        &self,
        layout: &Layout,
        row: usize,
        change: u8,
        image: Image,
        timestamptz: TimestamptzForm,
        out: &mut Vec<u8>,
    ) {
        let mut first = true;
        for (position, column) in layout.columns.iter().enumerate() {
            let Some(writer) = self.known(&layout.key, row, position, change, image) else {
                continue;
            };
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&column.json_prefix);
            writer.write_canal(row, timestamptz, out);
        }
    }

    /// Writes an update's `old` members for `row` (without braces), each old value
    /// through `write`.
    pub(crate) fn write_old(
        &self,
        layout: &Layout,
        batch: &RecordBatch,
        row: usize,
        write: impl Fn(&ColumnWriter<'_>, usize, &mut Vec<u8>),
        out: &mut Vec<u8>,
    ) {
        for (i, (position, old)) in self.old_columns(layout, batch, row).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&layout.columns[position].json_prefix);
            write(old, row, out);
        }
    }
}

/// Writes the placeholder of an unavailable value: a JSON string, base64 of its bytes
/// for a `bytea` column.
fn write_unavailable(bytes: bool, out: &mut Vec<u8>) {
    if bytes {
        base64(UNAVAILABLE_PLACEHOLDER.as_bytes(), out);
    } else {
        string(UNAVAILABLE_PLACEHOLDER, out);
    }
}

/// Whether two arrays of the same type hold equal values (both null counts as equal)
/// at `row`.
fn equal_at(a: &dyn Array, b: &dyn Array, row: usize) -> bool {
    match (a.is_null(row), b.is_null(row)) {
        (true, true) => true,
        (false, false) => a.slice(row, 1).to_data() == b.slice(row, 1).to_data(),
        _ => false,
    }
}
