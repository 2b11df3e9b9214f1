//! Synthetic ChangeBatches for benchmarks: the shape the source produces, without a
//! database, so a benchmark measures only the stage under test.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt8Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// An `orders` ChangeBatch of `rows` rows: the six metadata columns and five user
/// columns (bigint key, two texts, numeric(10,2), text), inserts, updates and
/// deletes mixed, primary key `id`.
pub fn orders_batch(rows: usize) -> RecordBatch {
    let pg = |name: &str, data_type: DataType, pg_type: &str| {
        Field::new(name, data_type, true).with_metadata(HashMap::from([(
            "weir.pg_type".to_owned(),
            pg_type.to_owned(),
        )]))
    };
    let schema = Schema::new(vec![
        Field::new("_op", DataType::UInt8, false),
        Field::new("_lsn", DataType::UInt64, false),
        Field::new("_commit_lsn", DataType::UInt64, false),
        Field::new("_xid", DataType::UInt32, false),
        Field::new(
            "_commit_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("_seq", DataType::UInt32, false),
        pg("id", DataType::Int64, "int8"),
        pg("email", DataType::Utf8, "text"),
        pg("status", DataType::Utf8, "text"),
        pg("total", DataType::Decimal128(10, 2), "numeric"),
        pg("region", DataType::Utf8, "text"),
    ])
    .with_metadata(HashMap::from([
        ("weir.schema".to_owned(), "public".to_owned()),
        ("weir.table".to_owned(), "orders".to_owned()),
        ("weir.primary_key".to_owned(), "id".to_owned()),
    ]));
    let n = |i: usize| u64::try_from(i).unwrap_or(u64::MAX);
    let statuses = ["paid", "new", "shipped", "paid"];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt8Array::from_iter_values(
            (0..rows).map(|i| [b'c', b'u', b'c', b'd'][i % 4]),
        )),
        Arc::new(UInt64Array::from_iter_values(
            (0..rows).map(|i| 0x1000 + n(i)),
        )),
        Arc::new(UInt64Array::from_iter_values((0..rows).map(|_| 0x9000))),
        Arc::new(UInt32Array::from_iter_values((0..rows).map(|_| 7))),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values((0..rows).map(|_| 1_763_712_000_000_000))
                .with_timezone("UTC"),
        ),
        Arc::new(UInt32Array::from_iter_values(
            (0..rows).map(|i| u32::try_from(i).unwrap_or(u32::MAX)),
        )),
        Arc::new(Int64Array::from_iter_values(
            (0..rows).map(|i| i64::try_from(i).unwrap_or(i64::MAX)),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("Customer{i}@Example.org")),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| statuses[i % 4]),
        )),
        Arc::new(
            Decimal128Array::from_iter_values(
                (0..rows).map(|i| i128::try_from((i * 7919) % 30_000).unwrap_or(0)),
            )
            .with_precision_and_scale(10, 2)
            .expect("decimal"),
        ),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| ["eu", "us", "ap"][i % 3]),
        )),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).expect("batch")
}

/// `batch` with `weir.primary_key` set to `key` (comma-separated column names), as
/// the source sets it from the catalog: batches captured straight from a
/// replication stream (`batch_messages`) have no catalog to ask.
pub fn with_primary_key(batch: &RecordBatch, key: &str) -> RecordBatch {
    let mut metadata: HashMap<String, String> = batch.schema().metadata().clone().into();
    metadata.insert("weir.primary_key".into(), key.into());
    let schema = batch.schema().as_ref().clone().with_metadata(metadata);
    RecordBatch::try_new(Arc::new(schema), batch.columns().to_vec())
        .expect("the same columns under a schema with one more metadata key")
}

/// `batch` with every row's `_op` set to `op`: streamed rows standing in for the
/// snapshot reads (`r`) of the same table.
pub fn with_op(batch: &RecordBatch, op: u8) -> RecordBatch {
    let index = batch.schema().index_of("_op").expect("an _op column");
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(arrow::array::UInt8Array::from(vec![op; batch.num_rows()]));
    RecordBatch::try_new(batch.schema(), columns).expect("the same schema")
}

/// `batch` with `weir.not_null` on the fields named (and on the same children of
/// `_before`), as the source sets it from the catalog for NOT NULL columns.
pub fn with_not_null(batch: &RecordBatch, columns: &[&str]) -> RecordBatch {
    use arrow::array::Array as _;
    use arrow::datatypes::{DataType, Field, Fields, Schema};
    let mark = |field: &Field| -> Field {
        if !columns.contains(&field.name().as_str()) {
            return field.clone();
        }
        let mut metadata = field.metadata().clone();
        metadata.insert(weir::contract::columns::metadata::NOT_NULL, "true");
        field.clone().with_metadata(metadata)
    };
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Struct(children) => {
                let children: Fields = children.iter().map(|c| mark(c)).collect();
                Field::new(
                    field.name(),
                    DataType::Struct(children),
                    field.is_nullable(),
                )
            }
            _ => mark(field),
        })
        .collect();
    let schema = Schema::new(fields).with_metadata(batch.schema().metadata().clone());
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(column, field)| match (column.data_type(), field.data_type()) {
                (DataType::Struct(_), DataType::Struct(children)) => {
                    let array = column
                        .as_any()
                        .downcast_ref::<arrow::array::StructArray>()
                        .expect("a struct");
                    Arc::new(arrow::array::StructArray::new(
                        children.clone(),
                        array.columns().to_vec(),
                        array.nulls().cloned(),
                    )) as arrow::array::ArrayRef
                }
                _ => Arc::clone(column),
            },
        )
        .collect();
    RecordBatch::try_new(Arc::new(schema), columns).expect("the same columns, fields marked")
}
