//! The plugin boundary: the fixed cost of one call, and rows/s of `sql-filter` (a
//! bitmap filter), `mask` (a batch map) and `c-lowercase` (a row-world map in C) on
//! 8192-row ChangeBatches, next to the same Rust logic run natively.
//!
//! `cargo bench -p weir-tests --bench plugin_call` (components from
//! `scripts/build-plugins.sh`). Criterion reports time per batch; rows/s is 8192
//! divided by it. Plugins run with the default limits (epoch deadline on).

use std::hint::black_box;

use arrow::array::RecordBatch;
use arrow::compute::filter_record_batch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir::plugin::{PluginEngine, PluginStage, StageOutcome, StageSpec};
use weir_guest::batch::BatchPlugin;
use weir_tests::{orders_batch, plugin_path};

const ROWS: usize = 8192;
const WHERE: &str = "status = 'paid' AND total > 100 AND _op <> 'd'";

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
    let batch = orders_batch(ROWS);
    let one_row = orders_batch(1);

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
