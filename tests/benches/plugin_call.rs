//! The plugin boundary: the fixed cost of one call, and rows/s of `sql-filter` (a
//! bitmap filter), `mask` (a batch map) and `c-lowercase` (a row-world map in C) on
//! 8192-row ChangeBatches, next to the same Rust logic run natively.
//!
//! `cargo bench -p weir-tests --bench plugin_call` (components from
//! `scripts/build-plugins.sh`). Criterion reports time per batch; rows/s is 8192
//! divided by it. Plugins run with the default limits (epoch deadline on).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt8Array, UInt32Array, UInt64Array,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir::plugin::{PluginEngine, PluginStage, StageOutcome, StageSpec};
use weir_guest::batch::BatchPlugin;
use weir_tests::plugin_path;

const ROWS: usize = 8192;
const WHERE: &str = "status = 'paid' AND total > 100 AND _op <> 'd'";

/// An `orders` ChangeBatch: metadata columns and five user columns.
fn orders(rows: usize) -> RecordBatch {
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

fn stage(engine: &PluginEngine, name: &str, config: serde_json::Value) -> PluginStage {
    let mut spec = StageSpec::new(name, plugin_path(name));
    spec.config = config;
    PluginStage::new(engine, spec).unwrap_or_else(|e| panic!("{e} (run scripts/build-plugins.sh)"))
}

fn run(stage: &PluginStage, batch: &RecordBatch) -> RecordBatch {
    match stage.process(batch.clone()).expect("runs") {
        StageOutcome::Passed(batch) => batch,
        StageOutcome::Failed { error, .. } => panic!("{error}"),
    }
}

fn benches(c: &mut Criterion) {
    let engine = PluginEngine::with_default_cache().expect("engine");
    let batch = orders(ROWS);
    let one_row = orders(1);

    let filter = stage(&engine, "sql-filter", serde_json::json!({ "where": WHERE }));
    let native_filter = sql_filter::SqlFilter::new(WHERE).expect("parses");
    let expected = filter_record_batch(&batch, &native_filter.evaluate(&batch).expect("evaluates"))
        .expect("filter");
    assert_eq!(run(&filter, &batch), expected, "plugin and native agree");

    let mut group = c.benchmark_group("call");
    group.bench_function("sql-filter, 1 row (fixed cost per call)", |b| {
        b.iter(|| black_box(run(&filter, &one_row)))
    });
    group.finish();

    let mut group = c.benchmark_group("8192 rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("sql-filter (wasm, bitmap applied by the host)", |b| {
        b.iter(|| black_box(run(&filter, &batch)))
    });
    let compiled = native_filter.compile(batch.schema_ref()).expect("compiles");
    group.bench_function("sql-filter logic native", |b| {
        b.iter(|| {
            let keep = sql_filter::eval::evaluate(&compiled, &batch).expect("evaluates");
            black_box(filter_record_batch(&batch, &keep).expect("filter"))
        })
    });

    let mask_config = serde_json::json!({"columns": ["email"], "method": "sha256", "salt": "s"});
    let mask = stage(&engine, "mask", mask_config.clone());
    let mut native_mask =
        mask::Mask::init(serde_json::from_value(mask_config).expect("config")).expect("init");
    let email_only = batch.project(&[7]).expect("project");
    let table = weir_guest::batch::Table {
        schema: "public".into(),
        name: "orders".into(),
        primary_key: vec!["id".into()],
        arrow: batch.schema(),
    };
    group.bench_function("mask sha256 (wasm)", |b| {
        b.iter(|| black_box(run(&mask, &batch)))
    });
    group.bench_function("mask sha256 logic native", |b| {
        b.iter(|| {
            let ctx = weir_guest::batch::Context { table: &table };
            black_box(
                native_mask
                    .process(email_only.clone(), &ctx)
                    .expect("masks"),
            )
        })
    });

    let rename = stage(
        &engine,
        "project",
        serde_json::json!({"rename": {"email": "customer_email"}}),
    );
    group.bench_function("project rename (wasm, batch replaced)", |b| {
        b.iter(|| black_box(run(&rename, &batch)))
    });

    let lowercase = stage(
        &engine,
        "c-lowercase",
        serde_json::json!({"columns": ["email"]}),
    );
    group.bench_function("c-lowercase (wasm, row world, C)", |b| {
        b.iter(|| black_box(run(&lowercase, &batch)))
    });
    group.finish();
}

criterion_group!(plugin_call, benches);
criterion_main!(plugin_call);
