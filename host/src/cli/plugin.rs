//! `weir plugin test`: runs a plugin on sample rows and prints what comes out, so a
//! plugin author iterates without a database or a broker.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::plugin::{
    CallError, Limits, PluginEngine, PluginStage, StageOutcome, StageSpec, batch_from_json,
    rows_as_json,
};

/// What `weir plugin test` was asked.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The component.
    pub wasm: PathBuf,
    /// The sample rows (see [`crate::plugin::batch_from_json`]).
    pub input: PathBuf,
    /// The stage's config as JSON text.
    pub config: Option<String>,
    /// Overrides the sample's table.
    pub table: Option<String>,
    /// Deadline and memory cap.
    pub limits: Limits,
}

/// How the plugin treated the sample.
#[derive(Debug)]
pub struct TestReport {
    /// Rows in the sample.
    pub rows_in: usize,
    /// The rows that passed, as JSON objects.
    pub rows_out: Vec<serde_json::Map<String, serde_json::Value>>,
    /// The contract world: `batch` or `row`.
    pub world: &'static str,
    /// Time of the plugin call (after loading).
    pub elapsed: Duration,
}

/// Why a test run did not produce rows.
#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    /// The plugin failed on the sample: exit code 1.
    #[error("the plugin failed: {0}")]
    Plugin(CallError),
    /// Anything else (files, config, loading): exit code 2.
    #[error(transparent)]
    Setup(#[from] anyhow::Error),
}

/// Loads the plugin, runs it once on the sample and reports what passed.
pub fn run_test(run: &TestRun) -> Result<TestReport, TestRunError> {
    let sample = std::fs::read_to_string(&run.input)
        .with_context(|| format!("reading {}", run.input.display()))?;
    let batch = batch_from_json(&sample, run.table.as_deref()).context("--input")?;
    let config = match &run.config {
        Some(text) => config_json(text)?,
        None => serde_json::json!({}),
    };
    let engine = PluginEngine::with_default_cache().context("starting the plugin engine")?;
    let mut spec = StageSpec::new(stage_name(&run.wasm), &run.wasm);
    spec.config = config;
    spec.limits = run.limits;
    let stage = PluginStage::new(&engine, spec).context("loading the plugin")?;
    let rows_in = batch.num_rows();
    let started = Instant::now();
    let outcome = stage.process(batch).context("running the plugin")?;
    let elapsed = started.elapsed();
    match outcome {
        StageOutcome::Passed(batch) => Ok(TestReport {
            rows_in,
            rows_out: rows_as_json(&batch).map_err(TestRunError::Plugin)?,
            world: stage.world(),
            elapsed,
        }),
        StageOutcome::Failed { error, .. } => Err(TestRunError::Plugin(error)),
    }
}

/// `--config` is JSON, or `@path` to a file holding JSON.
fn config_json(text: &str) -> anyhow::Result<serde_json::Value> {
    let (source, json) = match text.strip_prefix('@') {
        Some(path) => (
            path.to_owned(),
            std::fs::read_to_string(path).with_context(|| format!("reading --config {path}"))?,
        ),
        None => ("--config".to_owned(), text.to_owned()),
    };
    let value: serde_json::Value =
        serde_json::from_str(&json).with_context(|| format!("{source} is not JSON"))?;
    if !value.is_object() {
        bail!("{source} must be a JSON object, like {{\"where\": \"total > 100\"}}");
    }
    Ok(value)
}

fn stage_name(wasm: &Path) -> String {
    wasm.file_stem().map_or_else(
        || "plugin".to_owned(),
        |stem| stem.to_string_lossy().into_owned(),
    )
}

/// Prints the rows as JSON lines on `out` and a summary on `summary`.
pub fn print_report(
    report: &TestReport,
    out: &mut impl Write,
    summary: &mut impl Write,
) -> std::io::Result<()> {
    for row in &report.rows_out {
        serde_json::to_writer(&mut *out, row)?;
        writeln!(out)?;
    }
    writeln!(
        summary,
        "{} rows in, {} out ({} world, {:.3} ms)",
        report.rows_in,
        report.rows_out.len(),
        report.world,
        report.elapsed.as_secs_f64() * 1000.0
    )
}
