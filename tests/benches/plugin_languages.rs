//! One workload in every plugin language: lowercase the `email` column of 8192-row
//! ChangeBatches in the row world, reading only that column. Rust (`row-lowercase`)
//! and C (`c-lowercase`) are shipped fixtures; Python, JavaScript, Go and Zig are the
//! projects `weir plugin new --lang …` generates, which do exactly this, built here
//! afresh on every run (about 30 s).
//!
//! `cargo bench -p weir-tests --bench plugin_languages`. Criterion reports the time
//! per call: the 1-row call is the fixed cost of a call, the 8192-row call gives
//! rows/s. Plugins run with the default limits (epoch deadline on).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use arrow::array::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir::cli::scaffold::{Language, create};
use weir::plugin::{PluginEngine, PluginStage, StageSpec};
use weir_tests::{orders_batch, passed, plugin_path};

const ROWS: usize = 8192;

/// The component of the `weir plugin new` template in `language`, built afresh in
/// `dir` (so it always carries this tree's SDK).
fn template(dir: &Path, language: Language, tag: &str) -> PathBuf {
    let name = format!("lower-{tag}");
    let project = create(&name, language, dir, None).expect("template");
    let status = Command::new(project.join("build.sh"))
        .status()
        .expect("build.sh runs (scripts/setup.sh installs the toolchains)");
    assert!(status.success(), "building the {tag} template");
    project.join(format!("{name}.wasm"))
}

fn stage(engine: &PluginEngine, name: &str, path: &Path) -> PluginStage {
    let mut spec = StageSpec::new(name, path.to_path_buf());
    spec.config = serde_json::json!({"columns": ["email"]});
    PluginStage::new(engine, spec).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn run(stage: &PluginStage, batch: &RecordBatch) -> RecordBatch {
    passed(stage.process(batch.clone()).expect("runs"))
}

fn benches(c: &mut Criterion) {
    let engine = PluginEngine::with_default_cache().expect("engine");
    let batch = orders_batch(ROWS);
    let one_row = orders_batch(1);
    let templates = tempfile::tempdir().expect("tempdir");
    let dir = templates.path();
    let plugins = [
        ("rust", plugin_path("row-lowercase")),
        ("c", plugin_path("c-lowercase")),
        ("zig", template(dir, Language::Zig, "zig")),
        ("go", template(dir, Language::Go, "go")),
        ("javascript", template(dir, Language::Js, "js")),
        ("python", template(dir, Language::Python, "python")),
    ];
    let stages: Vec<(&str, PluginStage)> = plugins
        .iter()
        .map(|(language, path)| (*language, stage(&engine, language, path)))
        .collect();
    // Every language computes the same answer.
    let reference = run(&stages[0].1, &batch);
    for (language, stage) in &stages[1..] {
        assert_eq!(run(stage, &batch), reference, "{language} agrees with rust");
    }

    let mut group = c.benchmark_group("row world, 1 row (fixed cost per call)");
    group.measurement_time(Duration::from_secs(3));
    for (language, stage) in &stages {
        group.bench_function(*language, |b| b.iter(|| black_box(run(stage, &one_row))));
    }
    group.finish();

    let mut group = c.benchmark_group("row world, lowercase 8192 rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (language, stage) in &stages {
        group.bench_function(*language, |b| b.iter(|| black_box(run(stage, &batch))));
    }
    group.finish();
}

criterion_group!(plugin_languages, benches);
criterion_main!(plugin_languages);
