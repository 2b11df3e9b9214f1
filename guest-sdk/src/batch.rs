//! Batch-level plugins: each call gets one ChangeBatch as an Arrow `RecordBatch`.
//!
//! ```
//! use weir_guest::batch::arrow::array::cast::AsArray;
//! use weir_guest::batch::arrow::array::BooleanArray;
//! use weir_guest::batch::arrow::datatypes::UInt8Type;
//! use weir_guest::batch::{BatchPlugin, Context, Output, Plan, RecordBatch, Table};
//!
//! /// Drops deletes.
//! struct NoDeletes;
//!
//! impl BatchPlugin for NoDeletes {
//!     type Config = weir_guest::NoConfig;
//!     fn init(_: Self::Config) -> weir_guest::Result<Self> {
//!         Ok(NoDeletes)
//!     }
//!     fn prepare(&mut self, _: &Table) -> weir_guest::Result<Plan> {
//!         Ok(Plan::columns(["_op"])) // weir sends only this column
//!     }
//!     fn process(&mut self, batch: RecordBatch, ctx: &Context) -> weir_guest::Result<Output> {
//!         let ops = ctx.column(&batch, "_op")?.as_primitive::<UInt8Type>();
//!         let keep: BooleanArray = ops.iter().map(|op| Some(op != Some(b'd'))).collect();
//!         Ok(Output::Keep(keep))
//!     }
//! }
//! weir_guest::export_batch_plugin!(NoDeletes);
//!
//! // Natively, `testing::Harness` runs it as weir would, IPC included:
//! # use std::sync::Arc;
//! # use weir_guest::batch::arrow::array::{Int32Array, UInt8Array};
//! # use weir_guest::batch::arrow::datatypes::{DataType, Field, Schema};
//! let schema = Schema::new(vec![
//!     Field::new("_op", DataType::UInt8, false),
//!     Field::new("id", DataType::Int32, false),
//! ]);
//! let batch = RecordBatch::try_new(
//!     Arc::new(schema),
//!     vec![Arc::new(UInt8Array::from(vec![b'c', b'd'])), Arc::new(Int32Array::from(vec![1, 2]))],
//! )?;
//! let mut plugin = weir_guest::batch::testing::Harness::<NoDeletes>::new("{}")?;
//! assert_eq!(plugin.run(&batch)?.num_rows(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Batches arrive zero-copy (the IPC body becomes the arrays' buffers). Answer
//! [`Output::Keep`] to filter: weir applies the mask natively to the full batch, so a
//! filter that reads two columns never copies the others. Read only what you need
//! by returning [`Plan::columns`] from [`BatchPlugin::prepare`].

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::{
    DictionaryTracker, IpcDataGenerator, IpcWriteOptions, StreamWriter, write_message,
};
use arrow_schema::{Schema, SchemaRef};

pub use arrow_array::RecordBatch;

use crate::{Error, Result};

/// The Arrow crates this SDK uses, re-exported so plugins match its versions.
pub mod arrow {
    pub use arrow_array as array;
    pub use arrow_buffer as buffer;
    /// Schemas and data types, with the primitive type markers (`Int32Type`, …), as
    /// in the `arrow` crate.
    pub mod datatypes {
        pub use arrow_array::types::*;
        pub use arrow_schema::*;
    }
    pub use arrow_select as select;
}

/// Schema metadata keys weir sets (see DESIGN.md's ChangeBatch contract).
pub mod metadata {
    /// The PostgreSQL schema.
    pub const SCHEMA: &str = "weir.schema";
    /// The table name.
    pub const TABLE: &str = "weir.table";
    /// Primary key columns, comma-separated.
    pub const PRIMARY_KEY: &str = "weir.primary_key";
    /// Per field: the PostgreSQL type name.
    pub const PG_TYPE: &str = "weir.pg_type";
}

/// A table as announced to the plugin: its full schema.
#[derive(Debug, Clone)]
pub struct Table {
    /// PostgreSQL schema (empty when the host did not say).
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Primary key column names.
    pub primary_key: Vec<String>,
    /// The full Arrow schema, with `weir.*` metadata.
    pub arrow: SchemaRef,
}

impl Table {
    fn from_schema(arrow: SchemaRef) -> Self {
        let get = |key: &str| arrow.metadata().get(key).cloned().unwrap_or_default();
        let primary_key = get(metadata::PRIMARY_KEY)
            .split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            schema: get(metadata::SCHEMA),
            name: get(metadata::TABLE),
            primary_key,
            arrow,
        }
    }
}

/// What the plugin asks of a table.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Columns to receive, by name; empty: all.
    pub columns: Vec<String>,
    /// Whether the plugin wants this table at all.
    pub wants_table: bool,
}

impl Plan {
    /// Every column.
    pub fn all() -> Self {
        Self {
            columns: Vec::new(),
            wants_table: true,
        }
    }

    /// Only these columns (names the table lacks are ignored).
    pub fn columns<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: columns.into_iter().map(Into::into).collect(),
            wants_table: true,
        }
    }

    /// Nothing: the host skips this table's batches.
    pub fn skip() -> Self {
        Self {
            columns: Vec::new(),
            wants_table: false,
        }
    }
}

/// What a call knows besides the batch.
#[derive(Debug)]
pub struct Context<'a> {
    /// The table.
    pub table: &'a Table,
}

impl Context<'_> {
    /// The batch's column `name`, or an `invalid-input` error naming the table.
    pub fn column<'b>(&self, batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
        batch.column_by_name(name).ok_or_else(|| {
            Error::input(format!(
                "table {}.{} has no column `{name}`",
                self.table.schema, self.table.name
            ))
        })
    }
}

/// A plugin's answer for one batch.
#[derive(Debug, Clone)]
pub enum Output {
    /// Every row passes unchanged.
    Unchanged,
    /// One flag per row; true (not null) keeps it. Applied by the host.
    Keep(BooleanArray),
    /// A new batch replacing the input. It may add `_topic`, `_key`, `_partition`,
    /// `_headers`; columns not sent and metadata columns left out are restored by the
    /// host when the row count is unchanged.
    Replace(RecordBatch),
}

/// A batch-level plugin.
pub trait BatchPlugin: Sized + 'static {
    /// The stage's `config`, deserialized from JSON.
    type Config: serde::de::DeserializeOwned;

    /// Builds the plugin from its config, once per instance.
    fn init(config: Self::Config) -> Result<Self>;

    /// Decides what to receive of a table (default: everything).
    fn prepare(&mut self, table: &Table) -> Result<Plan> {
        let _ = table;
        Ok(Plan::all())
    }

    /// Processes one batch. Its columns are the plan's, in schema order.
    fn process(&mut self, batch: RecordBatch, ctx: &Context<'_>) -> Result<Output>;
}

struct Prepared {
    table: Table,
    decoder: StreamDecoder,
    /// The planned columns' indexes, when the plan named some.
    columns: Option<Vec<usize>>,
}

/// The glue between the WIT exports and a [`BatchPlugin`]: IPC in, bitmap or IPC out.
/// Public for the export macro and for tests that drive a plugin as the host does.
pub struct Runtime<P: BatchPlugin> {
    plugin: P,
    tables: HashMap<u32, Prepared>,
}

/// The wire form of a call's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireOutput {
    /// `unchanged`.
    Unchanged,
    /// `selection`: bit `i` keeps row `i`.
    Selection(Vec<u8>),
    /// `replaced`: an IPC stream.
    Replaced(Vec<u8>),
}

impl<P: BatchPlugin> Runtime<P> {
    /// `init` with the stage's JSON config (`""` counts as `{}`).
    pub fn init(config: &str) -> Result<Self> {
        let config = if config.trim().is_empty() {
            "{}"
        } else {
            config
        };
        let plugin = P::init(crate::parse_config(config)?)?;
        Ok(Self {
            plugin,
            tables: HashMap::new(),
        })
    }

    /// `prepare`: `schema` is an IPC stream holding the full schema message.
    pub fn prepare(&mut self, id: u32, schema: Vec<u8>) -> Result<Plan> {
        // The decoder only finishes a body-less schema message when the next message
        // arrives, so the schema is read from the flatbuffer here.
        let full = Arc::new(arrow_ipc::convert::try_schema_from_ipc_buffer(&schema)?);
        let mut decoder = StreamDecoder::new();
        let mut buffer = Buffer::from_vec(schema);
        decoder.decode(&mut buffer)?;
        let table = Table::from_schema(full);
        let plan = self.plugin.prepare(&table)?;
        let mut columns = None;
        let decoder = if plan.columns.is_empty() {
            decoder
        } else {
            // The host sends only the planned columns: decode against that schema.
            let indexes: Vec<usize> = table
                .arrow
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, field)| plan.columns.iter().any(|name| name == field.name()))
                .map(|(index, _)| index)
                .collect();
            let projected = table.arrow.project(&indexes)?;
            let mut decoder = StreamDecoder::new();
            let mut buffer = Buffer::from_vec(schema_message(&projected)?);
            decoder.decode(&mut buffer)?;
            columns = Some(indexes);
            decoder
        };
        self.tables.insert(
            id,
            Prepared {
                table,
                decoder,
                columns,
            },
        );
        Ok(plan)
    }

    /// `process`: `message` is one record batch message of the prepared stream.
    pub fn process(&mut self, id: u32, message: Vec<u8>) -> Result<WireOutput> {
        let prepared = self
            .tables
            .get_mut(&id)
            .ok_or_else(|| Error::failed(format!("table {id} was not prepared")))?;
        let mut buffer = Buffer::from_vec(message);
        let mut batch = None;
        while !buffer.is_empty() {
            if let Some(decoded) = prepared.decoder.decode(&mut buffer)? {
                batch = Some(decoded);
            }
        }
        let batch = batch.ok_or_else(|| Error::input("process: no record batch"))?;
        let rows = batch.num_rows();
        let ctx = Context {
            table: &prepared.table,
        };
        Ok(match self.plugin.process(batch, &ctx)? {
            Output::Unchanged => WireOutput::Unchanged,
            Output::Keep(keep) => {
                if keep.len() != rows {
                    return Err(Error::failed(format!(
                        "Output::Keep has {} flags for {rows} rows",
                        keep.len()
                    )));
                }
                WireOutput::Selection(selection_bits(&keep))
            }
            Output::Replace(batch) => WireOutput::Replaced(stream(&batch)?),
        })
    }
}

/// The mask as Arrow-ordered bits, nulls as false.
fn selection_bits(keep: &BooleanArray) -> Vec<u8> {
    let values = keep.values();
    let bits = match keep.nulls() {
        Some(nulls) => values & nulls.inner(),
        None => values.clone(),
    };
    if bits.offset() == 0 {
        let bytes = bits.len().div_ceil(8);
        bits.inner().as_slice()[..bytes].to_vec()
    } else {
        let mut out = vec![0u8; bits.len().div_ceil(8)];
        for (index, set) in bits.iter().enumerate() {
            if set {
                out[index / 8] |= 1 << (index % 8);
            }
        }
        out
    }
}

fn schema_message(schema: &Schema) -> Result<Vec<u8>> {
    let options = IpcWriteOptions::default();
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut DictionaryTracker::new(false),
        &options,
    );
    let mut out = Vec::new();
    write_message(&mut out, encoded, &options)?;
    Ok(out)
}

/// A complete IPC stream (schema, batch) for a replaced batch.
fn stream(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(batch.get_array_memory_size() + 1024);
    let mut writer = StreamWriter::try_new(&mut out, batch.schema_ref())?;
    writer.write(batch)?;
    writer.finish()?;
    drop(writer);
    Ok(out)
}

/// Runs a plugin natively on a batch, the way weir does (IPC and all), and returns
/// what weir would pass on: for unit tests of a plugin crate with `cargo test`.
pub mod testing {
    use super::*;

    /// A plugin instance for tests.
    pub struct Harness<P: BatchPlugin> {
        runtime: Runtime<P>,
        ids: Vec<(SchemaRef, u32)>,
    }

    impl<P: BatchPlugin> Harness<P> {
        /// `init` with `config` (JSON).
        pub fn new(config: &str) -> Result<Self> {
            Ok(Self {
                runtime: Runtime::init(config)?,
                ids: Vec::new(),
            })
        }

        /// Processes `batch` and applies the answer as weir would (selection applied,
        /// unsent columns restored only in the host: tests see the plugin's output).
        pub fn run(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
            let schema = batch.schema();
            let id = match self.ids.iter().find(|(known, _)| *known == schema) {
                Some((_, id)) => *id,
                None => {
                    let id = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
                    self.ids.push((Arc::clone(&schema), id));
                    let plan = self.runtime.prepare(id, schema_message(&schema)?)?;
                    if !plan.wants_table {
                        return Ok(batch.clone());
                    }
                    id
                }
            };
            let sent = match self
                .runtime
                .tables
                .get(&id)
                .map(|prepared| &prepared.columns)
            {
                Some(Some(columns)) => batch.project(columns)?,
                _ => batch.clone(),
            };
            let message = {
                let options = IpcWriteOptions::default();
                let (_, encoded) = IpcDataGenerator::default().encode(
                    &sent,
                    &mut DictionaryTracker::new(false),
                    &options,
                    &mut Default::default(),
                )?;
                let mut out = Vec::new();
                write_message(&mut out, encoded, &options)?;
                out
            };
            Ok(match self.runtime.process(id, message)? {
                WireOutput::Unchanged => batch.clone(),
                WireOutput::Selection(bits) => {
                    let mask = BooleanArray::new(
                        arrow_buffer::BooleanBuffer::new(
                            Buffer::from_vec(bits),
                            0,
                            batch.num_rows(),
                        ),
                        None,
                    );
                    arrow_select::filter::filter_record_batch(batch, &mask)?
                }
                WireOutput::Replaced(bytes) => {
                    let mut decoder = StreamDecoder::new();
                    let mut buffer = Buffer::from_vec(bytes);
                    let mut out = None;
                    while !buffer.is_empty() {
                        if let Some(decoded) = decoder.decode(&mut buffer)? {
                            out = Some(decoded);
                        }
                    }
                    out.ok_or_else(|| Error::failed("replaced stream without a batch"))?
                }
            })
        }
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;
    use crate::wit::batch::exports::weir::plugin::batch::{BatchOutput, PluginError, TablePlan};

    pub fn init<P: BatchPlugin>(config: &str) -> Result<(), PluginError> {
        let runtime = Runtime::<P>::init(config)?;
        crate::__private::set_state(runtime);
        Ok(())
    }

    pub fn prepare<P: BatchPlugin>(id: u32, schema: Vec<u8>) -> Result<TablePlan, PluginError> {
        let plan =
            crate::__private::with_state(|runtime: &mut Runtime<P>| runtime.prepare(id, schema))?;
        Ok(TablePlan {
            columns: plan.columns,
            wants_table: plan.wants_table,
        })
    }

    pub fn process<P: BatchPlugin>(id: u32, message: Vec<u8>) -> Result<BatchOutput, PluginError> {
        let output =
            crate::__private::with_state(|runtime: &mut Runtime<P>| runtime.process(id, message))?;
        Ok(match output {
            WireOutput::Unchanged => BatchOutput::Unchanged,
            WireOutput::Selection(bits) => BatchOutput::Selection(bits),
            WireOutput::Replaced(bytes) => BatchOutput::Replaced(bytes),
        })
    }
}

/// Exports a [`BatchPlugin`] as the component's `batch-plugin` world. Expands to
/// nothing when not compiling for WebAssembly.
#[macro_export]
macro_rules! export_batch_plugin {
    ($plugin:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            use $crate::wit::batch::exports::weir::plugin::batch as wit_batch;

            struct WeirBatchExport;

            impl wit_batch::Guest for WeirBatchExport {
                fn init(config: ::std::string::String) -> ::core::result::Result<(), wit_batch::PluginError> {
                    $crate::batch::__private::init::<$plugin>(&config)
                }

                fn prepare(
                    table: wit_batch::TableId,
                    schema: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<wit_batch::TablePlan, wit_batch::PluginError> {
                    $crate::batch::__private::prepare::<$plugin>(table, schema)
                }

                fn process(
                    table: wit_batch::TableId,
                    batch: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<wit_batch::BatchOutput, wit_batch::PluginError> {
                    $crate::batch::__private::process::<$plugin>(table, batch)
                }
            }

            $crate::wit::batch::export_batch_world!(WeirBatchExport with_types_in $crate::wit::batch);
        };
    };
}
