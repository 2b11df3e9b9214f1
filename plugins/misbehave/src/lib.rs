//! A test fixture, not a shipped plugin: misbehaves on purpose so weir's tests can
//! show that the sandbox and the limits hold. `config: { mode: … }`:
//!
//! - `loop`: spins forever (the deadline must stop it);
//! - `alloc`: allocates without bound (the memory cap must stop it);
//! - `trap`: panics, which traps;
//! - `trap-on-delete`: panics only for batches holding a delete;
//! - `error`: returns a plugin error;
//! - `probe`: tries to read `path`, the variable `var` and the clock, and answers
//!   with a batch of one text column `probe` describing what it saw.

use std::sync::Arc;

use serde::Deserialize;
use weir_guest::batch::arrow::array::StringArray;
use weir_guest::batch::arrow::array::cast::AsArray;
use weir_guest::batch::arrow::datatypes::{DataType, Field, Schema, UInt8Type};
use weir_guest::batch::{BatchPlugin, Context, Output, RecordBatch};
use weir_guest::{Error, Result};

/// The stage's `config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    mode: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    var: String,
}

/// The plugin.
#[derive(Debug)]
pub struct Misbehave {
    config: Config,
}

impl BatchPlugin for Misbehave {
    type Config = Config;

    fn init(config: Config) -> Result<Self> {
        weir_guest::info!("misbehave initialised in mode {}", config.mode);
        Ok(Self { config })
    }

    fn process(&mut self, batch: RecordBatch, ctx: &Context<'_>) -> Result<Output> {
        match self.config.mode.as_str() {
            "loop" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("misbehave: trap on purpose"),
            "trap-on-delete" => {
                let ops = ctx.column(&batch, "_op")?.as_primitive::<UInt8Type>();
                if ops.values().contains(&b'd') {
                    panic!("misbehave: a delete");
                }
                Ok(Output::Unchanged)
            }
            "error" => Err(Error::failed("misbehave: error on purpose")),
            "probe" => {
                let file = match std::fs::read_to_string(&self.config.path) {
                    Ok(text) => format!("file: read {:?}", text.trim()),
                    Err(error) => format!("file: denied ({error})"),
                };
                let var = match std::env::var(&self.config.var) {
                    Ok(value) => format!("env: {value}"),
                    Err(error) => format!("env: denied ({error})"),
                };
                let clock = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let clock = format!("clock: {clock}");
                let rows = batch.num_rows();
                let text = format!("{file}; {var}; {clock}");
                let schema = Arc::new(Schema::new(vec![Field::new(
                    "probe",
                    DataType::Utf8,
                    false,
                )]));
                Ok(Output::Replace(RecordBatch::try_new(
                    schema,
                    vec![Arc::new(StringArray::from(vec![text; rows]))],
                )?))
            }
            other => Err(Error::config(format!("misbehave: unknown mode {other}"))),
        }
    }
}

weir_guest::export_batch_plugin!(Misbehave);
