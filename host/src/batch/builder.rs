//! Building a table's ChangeBatches row by row from pgoutput tuples.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::builder::NullBufferBuilder;
use arrow::array::{ArrayBuilder, make_builder};
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder,
    ListBuilder, StringBuilder, StructArray, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
    UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, IntervalMonthDayNano};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::parse::{self, Element};
use super::schema::{BEFORE, TableSchema};
use super::types::{ColumnKind, ElementKind};
use crate::lsn::Lsn;
use weir_pgoutput::{Tuple, TupleValue};

/// Why a row could not be added to a batch. (Fields name the table and column,
/// never a value: row data stays out of logs.)
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The tuple does not have the relation's column count: the Relation message and
    /// the change disagree, which pgoutput never does for one session.
    #[error("table {table}: a change has {found} columns, the relation {expected}")]
    ColumnCount {
        table: String,
        expected: usize,
        found: usize,
    },
    /// A text value that is not valid UTF-8: the database's encoding is not UTF8.
    #[error(
        "table {table}, column {column}: value is not valid UTF-8 (is the database encoding UTF8?)"
    )]
    InvalidUtf8 { table: String, column: String },
    /// A value in binary form for a column whose binary form weir does not read
    /// (it requests text for those).
    #[error("table {table}, column {column}: a binary value weir cannot read")]
    UnexpectedBinary { table: String, column: String },
    /// Arrow rejected the arrays (a bug in weir's schema construction).
    #[error("building the Arrow batch failed")]
    Arrow(#[from] ArrowError),
}

/// The metadata of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowMeta {
    /// `_op`: one of [`super::schema::op`].
    pub op: u8,
    /// `_lsn`.
    pub lsn: Lsn,
    /// `_commit_lsn`.
    pub commit_lsn: Lsn,
    /// `_xid`.
    pub xid: u32,
    /// Microseconds since the Unix epoch.
    pub commit_time_micros: i64,
    /// `_seq`.
    pub seq: u32,
}

/// Builds ChangeBatches of one table.
///
/// Rows are appended with [`ChangeBatchBuilder::append`] and cut into a batch with
/// [`ChangeBatchBuilder::finish`] when the caller's row, byte or time budget says so.
/// Builders keep their capacity across batches: after the first batch, appending
/// allocates only when a batch outgrows the previous ones.
///
/// Every value PostgreSQL writes for a column's type has a form in the column's Arrow
/// type (a `NaN` in `numeric(p, s)` is null, a 2-D array is flattened; see
/// docs/source.md), so consumers never see a column change type mid-stream. Only
/// text the parsers do not know (none is known) widens its column to text: the rows
/// so far are finished as a batch of the old schema (collect it with
/// [`ChangeBatchBuilder::take_ready`]) and the table continues under a new schema
/// version, the value kept whole.
#[derive(Debug)]
pub struct ChangeBatchBuilder {
    table: Arc<TableSchema>,
    op: UInt8Builder,
    lsn: UInt64Builder,
    commit_lsn: UInt64Builder,
    xid: UInt32Builder,
    commit_ts: TimestampMicrosecondBuilder,
    seq: UInt32Builder,
    columns: Vec<ColumnBuilder>,
    before: Vec<ColumnBuilder>,
    before_validity: NullBufferBuilder,
    unchanged: ListBuilder<UInt16Builder>,
    /// Per-row scratch: the parsed new/old images, reused for every row.
    parsed: Vec<Parsed>,
    parsed_before: Vec<Parsed>,
    /// Scratch for hex-decoded `bytea`.
    scratch: Vec<u8>,
    /// Per-row scratch: elements of the row's array values.
    lists: ListScratch,
    rows: usize,
    bytes: usize,
    capacity: usize,
    ready: VecDeque<RecordBatch>,
}

impl ChangeBatchBuilder {
    /// A builder for `table`, sized for batches of about `capacity` rows.
    pub fn new(table: Arc<TableSchema>, capacity: usize) -> Result<Self, BatchError> {
        let columns = column_builders(&table, capacity)?;
        let before = column_builders(&table, capacity)?;
        Ok(Self {
            op: UInt8Builder::with_capacity(capacity),
            lsn: UInt64Builder::with_capacity(capacity),
            commit_lsn: UInt64Builder::with_capacity(capacity),
            xid: UInt32Builder::with_capacity(capacity),
            commit_ts: TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            seq: UInt32Builder::with_capacity(capacity),
            columns,
            before,
            before_validity: NullBufferBuilder::new(capacity),
            unchanged: unchanged_builder(capacity),
            parsed: Vec::with_capacity(table.columns.len()),
            parsed_before: Vec::with_capacity(table.columns.len()),
            scratch: Vec::new(),
            lists: ListScratch::default(),
            rows: 0,
            bytes: 0,
            capacity,
            ready: VecDeque::new(),
            table,
        })
    }

    /// The table schema the next rows are built under.
    pub fn table(&self) -> &Arc<TableSchema> {
        &self.table
    }

    /// Rows appended since the last batch was finished.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows are pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// An estimate of the pending rows' size in bytes (their text as received), for
    /// byte-based batch cutting.
    pub fn byte_size(&self) -> usize {
        self.bytes
    }

    /// Appends one change. `image` is the new row (insert, update) or the old key or
    /// row (delete); `before` the old image when the replica identity sent one.
    ///
    /// # Errors
    ///
    /// [`BatchError`] for a tuple that does not match the table, a non-UTF-8 text
    /// value or a binary value; the builder is unchanged then.
    pub fn append(
        &mut self,
        meta: &RowMeta,
        image: &Tuple,
        before: Option<&Tuple>,
    ) -> Result<(), BatchError> {
        self.check_width(image)?;
        if let Some(before) = before {
            self.check_width(before)?;
        }
        // Phase 1: parse everything, widening columns whose values do not fit.
        loop {
            self.lists.clear();
            let failed = parse_row(&self.table, image, &mut self.parsed, &mut self.lists)?.or(
                match before {
                    Some(before) => parse_row(
                        &self.table,
                        before,
                        &mut self.parsed_before,
                        &mut self.lists,
                    )?,
                    None => None,
                },
            );
            match failed {
                Some(column) => self.widen(column)?,
                None => break,
            }
        }
        // Phase 2: append; cannot fail on data any more.
        self.op.append_value(meta.op);
        self.lsn.append_value(meta.lsn.0);
        self.commit_lsn.append_value(meta.commit_lsn.0);
        self.xid.append_value(meta.xid);
        self.commit_ts.append_value(meta.commit_time_micros);
        self.seq.append_value(meta.seq);

        let mut any_unchanged = false;
        for (index, ((builder, parsed), raw)) in self
            .columns
            .iter_mut()
            .zip(&self.parsed)
            .zip(image.values())
            .enumerate()
        {
            // Under REPLICA IDENTITY FULL the old image holds the value an update
            // left unchanged in TOAST: the row gets it, as Debezium's does.
            let kept = match (parsed, before) {
                (Parsed::Unchanged, Some(before)) => self
                    .parsed_before
                    .get(index)
                    .filter(|old| !matches!(old, Parsed::Unchanged | Parsed::Null))
                    .zip(before.values().nth(index)),
                _ => None,
            };
            if let Some((old, old_raw)) = kept {
                builder.append(*old, old_raw, &mut self.scratch, &self.lists);
                continue;
            }
            if matches!(parsed, Parsed::Unchanged) {
                self.unchanged
                    .values()
                    .append_value(u16::try_from(index).unwrap_or(u16::MAX));
                any_unchanged = true;
            }
            builder.append(*parsed, raw, &mut self.scratch, &self.lists);
        }
        self.unchanged.append(any_unchanged);

        match before {
            Some(before) => {
                for ((builder, parsed), raw) in self
                    .before
                    .iter_mut()
                    .zip(&self.parsed_before)
                    .zip(before.values())
                {
                    builder.append(*parsed, raw, &mut self.scratch, &self.lists);
                }
                self.before_validity.append_non_null();
            }
            None => {
                for builder in &mut self.before {
                    builder.append_null();
                }
                self.before_validity.append_null();
            }
        }
        self.rows += 1;
        self.bytes += image.byte_len() + before.map_or(0, Tuple::byte_len) + ROW_OVERHEAD_BYTES;
        Ok(())
    }

    /// Finishes the pending rows as a batch; `None` when there are none. The builder
    /// is ready for the next batch.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, BatchError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let schema = Arc::clone(self.table.arrow_schema());
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.op.finish()),
            Arc::new(self.lsn.finish()),
            Arc::new(self.commit_lsn.finish()),
            Arc::new(self.xid.finish()),
            Arc::new(self.commit_ts.finish()),
            Arc::new(self.seq.finish()),
        ];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        let before_fields = match schema.field_with_name(BEFORE)?.data_type() {
            DataType::Struct(fields) => fields.clone(),
            _ => return Err(ArrowError::SchemaError("_before is not a struct".to_owned()).into()),
        };
        let before_arrays = self.before.iter_mut().map(ColumnBuilder::finish).collect();
        arrays.push(Arc::new(StructArray::try_new(
            before_fields,
            before_arrays,
            self.before_validity.finish(),
        )?));
        arrays.push(Arc::new(self.unchanged.finish()));
        self.rows = 0;
        self.bytes = 0;
        Ok(Some(RecordBatch::try_new(schema, arrays)?))
    }

    /// A batch finished early because the schema changed under it (see the type docs).
    pub fn take_ready(&mut self) -> Option<RecordBatch> {
        self.ready.pop_front()
    }

    fn check_width(&self, tuple: &Tuple) -> Result<(), BatchError> {
        if tuple.len() == self.table.columns.len() {
            Ok(())
        } else {
            Err(BatchError::ColumnCount {
                table: qualified(&self.table),
                expected: self.table.columns.len(),
                found: tuple.len(),
            })
        }
    }

    fn widen(&mut self, column: usize) -> Result<(), BatchError> {
        // The parsers take every value PostgreSQL writes for these types (see
        // docs/pipeline.md, "What each change does"); text they do not know is kept
        // whole rather than dropped, at the cost of a new schema version.
        tracing::warn!(
            table = %qualified(&self.table),
            column = %self.table.columns.get(column).map_or("?", |c| c.name.as_str()),
            "A value in a form weir does not parse for its column's type; carrying the column as text from now on."
        );
        if let Some(batch) = self.finish()? {
            self.ready.push_back(batch);
        }
        self.table = Arc::new(self.table.with_text_column(column));
        self.columns = column_builders(&self.table, self.capacity)?;
        self.before = column_builders(&self.table, self.capacity)?;
        Ok(())
    }
}

/// Bytes counted per row beyond its values: the metadata columns and offsets.
const ROW_OVERHEAD_BYTES: usize = 40;

fn qualified(table: &TableSchema) -> String {
    format!("{}.{}", table.namespace, table.name)
}

fn unchanged_builder(capacity: usize) -> ListBuilder<UInt16Builder> {
    ListBuilder::with_capacity(UInt16Builder::new(), capacity)
        .with_field(Arc::new(Field::new_list_field(DataType::UInt16, false)))
}

fn column_builders(table: &TableSchema, capacity: usize) -> Result<Vec<ColumnBuilder>, BatchError> {
    table
        .columns
        .iter()
        .map(|column| ColumnBuilder::new(column.kind, capacity))
        .collect()
}

/// Parses `tuple` into `out`. `Ok(Some(i))` when column `i`'s value does not fit its
/// Arrow type (the column must be widened); errors for input no column could take.
fn parse_row(
    table: &TableSchema,
    tuple: &Tuple,
    out: &mut Vec<Parsed>,
    lists: &mut ListScratch,
) -> Result<Option<usize>, BatchError> {
    out.clear();
    for (index, (column, value)) in table.columns.iter().zip(tuple.values()).enumerate() {
        let parsed = match value {
            TupleValue::Null => Parsed::Null,
            TupleValue::UnchangedToast => Parsed::Unchanged,
            TupleValue::Binary(value) => match parse_binary(column.kind, value) {
                Some(parsed) => parsed,
                None => {
                    return Err(BatchError::UnexpectedBinary {
                        table: qualified(table),
                        column: column.name.clone(),
                    });
                }
            },
            TupleValue::Text(text) => match parse_text(column.kind, text, lists) {
                Some(parsed) => parsed,
                None if column.kind == ColumnKind::Text => {
                    return Err(BatchError::InvalidUtf8 {
                        table: qualified(table),
                        column: column.name.clone(),
                    });
                }
                None => return Ok(Some(index)),
            },
        };
        out.push(parsed);
    }
    Ok(None)
}

/// Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's binary epoch.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const POSTGRES_EPOCH_DAYS: i32 = 10_957;

/// Reads a value in its type's binary form (`typsend`, as binary `COPY` sends
/// it) for the kinds of [`ColumnKind::reads_binary`]; `None` for anything else.
fn parse_binary(kind: ColumnKind, value: &[u8]) -> Option<Parsed> {
    fn be<const N: usize>(value: &[u8]) -> Option<[u8; N]> {
        value.try_into().ok()
    }
    Some(match kind {
        ColumnKind::Boolean => Parsed::Bool(*be::<1>(value)?.first()? != 0),
        ColumnKind::Int16 => Parsed::I16(i16::from_be_bytes(be(value)?)),
        ColumnKind::Int32 => Parsed::I32(i32::from_be_bytes(be(value)?)),
        ColumnKind::Int64 => Parsed::I64(i64::from_be_bytes(be(value)?)),
        ColumnKind::UInt32 => Parsed::U32(u32::from_be_bytes(be(value)?)),
        ColumnKind::Float32 => Parsed::F32(f32::from_bits(u32::from_be_bytes(be(value)?))),
        ColumnKind::Float64 => Parsed::F64(f64::from_bits(u64::from_be_bytes(be(value)?))),
        ColumnKind::Date => Parsed::Date(match i32::from_be_bytes(be(value)?) {
            // ±infinity, as the text parser gives them.
            days @ (i32::MAX | i32::MIN) => days,
            days => days.checked_add(POSTGRES_EPOCH_DAYS)?,
        }),
        ColumnKind::Time => Parsed::Micros(i64::from_be_bytes(be(value)?)),
        ColumnKind::Timestamp | ColumnKind::TimestampTz => {
            Parsed::Micros(match i64::from_be_bytes(be(value)?) {
                micros @ (i64::MAX | i64::MIN) => micros,
                micros => {
                    parse::finite_micros(i128::from(micros) + i128::from(POSTGRES_EPOCH_MICROS))
                }
            })
        }
        ColumnKind::Bytes => Parsed::Bytes,
        _ => return None,
    })
}

fn parse_text(kind: ColumnKind, text: &[u8], lists: &mut ListScratch) -> Option<Parsed> {
    Some(match kind {
        ColumnKind::Boolean => Parsed::Bool(parse::bool(text)?),
        ColumnKind::Int16 => Parsed::I16(parse::int(text)?),
        ColumnKind::Int32 => Parsed::I32(parse::int(text)?),
        ColumnKind::Int64 => Parsed::I64(parse::int(text)?),
        ColumnKind::UInt32 => Parsed::U32(parse::uint32(text)?),
        ColumnKind::Float32 => Parsed::F32(parse::float(text)?),
        ColumnKind::Float64 => Parsed::F64(parse::float(text)?),
        // A `numeric(p, s)` holds NaN, which no decimal does: null, as Debezium
        // writes it, so the column keeps its type (`Infinity` needs an
        // unconstrained column, but is taken alike).
        ColumnKind::Decimal { scale, .. } => match parse::decimal(text, scale) {
            Some(value) => Parsed::Decimal(value),
            None if matches!(text, b"NaN" | b"Infinity" | b"-Infinity") => Parsed::Null,
            None => return None,
        },
        ColumnKind::Date => Parsed::Date(parse::date(text)?),
        ColumnKind::Time => Parsed::Micros(parse::time(text)?),
        ColumnKind::Timestamp => Parsed::Micros(parse::timestamp(text, false)?),
        ColumnKind::TimestampTz => Parsed::Micros(parse::timestamp(text, true)?),
        ColumnKind::Interval => Parsed::Interval(parse::interval(text)?),
        ColumnKind::Bytes => {
            let hex = text.strip_prefix(b"\\x")?;
            (hex.len() % 2 == 0 && hex.iter().all(u8::is_ascii_hexdigit))
                .then_some(Parsed::Bytes)?
        }
        ColumnKind::List(element) => {
            let start = lists.elements.len();
            parse::array(text, element, &mut lists.elements, &mut lists.text)?;
            Parsed::List {
                start,
                end: lists.elements.len(),
            }
        }
        ColumnKind::Text => {
            std::str::from_utf8(text).ok()?;
            Parsed::Text
        }
    })
}

/// The elements of one row's array values, reused across rows.
#[derive(Debug, Default)]
struct ListScratch {
    elements: Vec<Element>,
    /// Unescaped text elements.
    text: Vec<u8>,
}

impl ListScratch {
    fn clear(&mut self) {
        self.elements.clear();
        self.text.clear();
    }
}

/// A value after phase 1. Text and bytes are re-read from the tuple in phase 2, so
/// this holds no borrow and the scratch row is reused across rows.
#[derive(Debug, Clone, Copy)]
enum Parsed {
    Null,
    Unchanged,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    U32(u32),
    F32(f32),
    F64(f64),
    Decimal(i128),
    Date(i32),
    Micros(i64),
    Interval(IntervalMonthDayNano),
    Bytes,
    /// Elements `start..end` of the row's [`ListScratch`].
    List {
        start: usize,
        end: usize,
    },
    Text,
}

/// One user column's Arrow builder.
#[derive(Debug)]
enum ColumnBuilder {
    Boolean(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    UInt32(UInt32Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Interval(IntervalMonthDayNanoBuilder),
    Bytes(BinaryBuilder),
    List(ListValues, ElementKind),
    Text(StringBuilder),
}

impl ColumnBuilder {
    fn new(kind: ColumnKind, capacity: usize) -> Result<Self, BatchError> {
        Ok(match kind {
            ColumnKind::Boolean => Self::Boolean(BooleanBuilder::with_capacity(capacity)),
            ColumnKind::Int16 => Self::Int16(Int16Builder::with_capacity(capacity)),
            ColumnKind::Int32 => Self::Int32(Int32Builder::with_capacity(capacity)),
            ColumnKind::Int64 => Self::Int64(Int64Builder::with_capacity(capacity)),
            ColumnKind::UInt32 => Self::UInt32(UInt32Builder::with_capacity(capacity)),
            ColumnKind::Float32 => Self::Float32(Float32Builder::with_capacity(capacity)),
            ColumnKind::Float64 => Self::Float64(Float64Builder::with_capacity(capacity)),
            ColumnKind::Decimal { precision, scale } => Self::Decimal(
                Decimal128Builder::with_capacity(capacity)
                    .with_precision_and_scale(precision, scale)?,
            ),
            ColumnKind::Date => Self::Date(Date32Builder::with_capacity(capacity)),
            ColumnKind::Time => Self::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            ColumnKind::Timestamp => {
                Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            ColumnKind::TimestampTz => Self::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            ColumnKind::Interval => {
                Self::Interval(IntervalMonthDayNanoBuilder::with_capacity(capacity))
            }
            ColumnKind::Bytes => Self::Bytes(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            ColumnKind::List(element) => {
                let values = make_builder(&element.data_type(), capacity * 4);
                let field = Arc::new(Field::new_list_field(element.data_type(), true));
                Self::List(
                    ListValues(ListBuilder::with_capacity(values, capacity).with_field(field)),
                    element,
                )
            }
            ColumnKind::Text => Self::Text(StringBuilder::with_capacity(capacity, capacity * 16)),
        })
    }

    /// Appends a phase-1 value. `raw` is the same value as received, read again for
    /// text and bytes; a kind mismatch cannot happen (phase 1 parsed for this kind)
    /// and appends null rather than panicking.
    #[inline]
    fn append(
        &mut self,
        parsed: Parsed,
        raw: TupleValue<'_>,
        scratch: &mut Vec<u8>,
        lists: &ListScratch,
    ) {
        match (self, parsed) {
            (Self::Boolean(b), Parsed::Bool(v)) => b.append_value(v),
            (Self::Int16(b), Parsed::I16(v)) => b.append_value(v),
            (Self::Int32(b), Parsed::I32(v)) => b.append_value(v),
            (Self::Int64(b), Parsed::I64(v)) => b.append_value(v),
            (Self::UInt32(b), Parsed::U32(v)) => b.append_value(v),
            (Self::Float32(b), Parsed::F32(v)) => b.append_value(v),
            (Self::Float64(b), Parsed::F64(v)) => b.append_value(v),
            (Self::Decimal(b), Parsed::Decimal(v)) => b.append_value(v),
            (Self::Date(b), Parsed::Date(v)) => b.append_value(v),
            (Self::Time(b), Parsed::Micros(v)) => b.append_value(v),
            (Self::Timestamp(b), Parsed::Micros(v)) => b.append_value(v),
            (Self::Interval(b), Parsed::Interval(v)) => b.append_value(v),
            (Self::Bytes(b), Parsed::Bytes) => match raw {
                TupleValue::Text(text) if parse::bytea_hex(text, scratch).is_some() => {
                    b.append_value(&scratch[..])
                }
                TupleValue::Binary(bytes) => b.append_value(bytes),
                _ => b.append_null(),
            },
            (Self::List(b, element), Parsed::List { start, end }) => {
                let data_type = element.data_type();
                for value in lists.elements.get(start..end).unwrap_or_default() {
                    append_list_element(b.0.values().as_any_mut(), &data_type, *value, &lists.text);
                }
                b.0.append(true);
            }
            (Self::Text(b), Parsed::Text) => match raw {
                TupleValue::Text(text) => match std::str::from_utf8(text) {
                    Ok(text) => b.append_value(text),
                    Err(_) => b.append_null(),
                },
                _ => b.append_null(),
            },
            (builder, _) => builder.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Boolean(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::UInt32(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Time(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Interval(b) => b.append_null(),
            Self::Bytes(b) => b.append_null(),
            Self::List(b, _) => b.0.append_null(),
            Self::Text(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::UInt32(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Interval(b) => Arc::new(b.finish()),
            Self::Bytes(b) => Arc::new(b.finish()),
            Self::List(b, _) => Arc::new(b.0.finish()),
            Self::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// A List column's builder; its element builder is type-erased, so Debug is ours.
struct ListValues(ListBuilder<Box<dyn ArrayBuilder>>);

impl std::fmt::Debug for ListValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListValues")
            .field("len", &self.0.len())
            .finish()
    }
}

/// Appends one parsed array element to a List column's values builder, whose element
/// type is `data_type`. An element that does not fit the type is appended as null
/// and reported with `false`; a builder of another type appends nothing and also
/// gives `false`. The source's builder never sees either (phase 1 parsed for the
/// column's kind); the row adapter turns `false` into an error.
pub(crate) fn append_list_element(
    values: &mut dyn std::any::Any,
    data_type: &DataType,
    element: Element,
    text: &[u8],
) -> bool {
    macro_rules! push {
        ($builder:ty, $value:expr) => {
            match values.downcast_mut::<$builder>() {
                Some(builder) => {
                    let value = $value;
                    let fits = value.is_some() || element == Element::Null;
                    builder.append_option(value);
                    fits
                }
                None => false,
            }
        };
    }
    let int = |element: Element| match element {
        Element::Int(v) => Some(v),
        _ => None,
    };
    let float = |element: Element| match element {
        Element::Float(v) => Some(v),
        _ => None,
    };
    match data_type {
        DataType::Boolean => push!(
            BooleanBuilder,
            match element {
                Element::Bool(v) => Some(v),
                _ => None,
            }
        ),
        DataType::Int16 => push!(
            Int16Builder,
            int(element).and_then(|v| i16::try_from(v).ok())
        ),
        DataType::Int32 => push!(
            Int32Builder,
            int(element).and_then(|v| i32::try_from(v).ok())
        ),
        DataType::Int64 => push!(Int64Builder, int(element)),
        // `_unchanged` holds column positions.
        DataType::UInt16 => push!(
            UInt16Builder,
            int(element).and_then(|v| u16::try_from(v).ok())
        ),
        // Parsed from f32 text, so narrowing back is exact.
        #[allow(clippy::cast_possible_truncation)]
        DataType::Float32 => push!(Float32Builder, float(element).map(|v| v as f32)),
        DataType::Float64 => push!(Float64Builder, float(element)),
        DataType::Utf8 => push!(
            StringBuilder,
            match element {
                Element::Text { start, end } => text
                    .get(start..end)
                    .and_then(|bytes| std::str::from_utf8(bytes).ok()),
                _ => None,
            }
        ),
        _ => false,
    }
}
