//! One live instance of a stage's component: its store, its prepared tables, and the
//! calls into it, each under the stage's deadline.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, BooleanArray};
use arrow::buffer::{BooleanBuffer, Buffer};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, Trap};

use super::bindings::{batch_world, row_world};
use super::engine::PluginEngine;
use super::error::{CallError, PluginError};
use super::ipc::{IpcEncoder, decode_stream};
use super::rows::{self, FlatSchema, Source};
use super::sandbox::{Grants, Limits, StoreState};

/// The contract package the host implements; a component built against another major
/// version does not link.
const BATCH_EXPORT: &str = "weir:plugin/batch@0.1.0";
const ROW_EXPORT: &str = "weir:plugin/row@0.1.0";

/// Identifies one schema of one table to a plugin.
pub(crate) type TableId = u32;

/// A component linked for its world, ready to instantiate cheaply.
#[derive(Clone)]
pub(crate) enum Linked {
    Batch(batch_world::BatchPluginPre<StoreState>),
    Row(row_world::RowPluginPre<StoreState>),
}

impl Linked {
    /// Links `component` against WASI and the contract, by the world it exports.
    pub(crate) fn new(engine: &PluginEngine, component: &Component) -> Result<Self, String> {
        let engine = engine.engine();
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let has = |name: &str| exports.iter().any(|export| export == name);
        if has(BATCH_EXPORT) {
            let linker = linker(engine, |linker| {
                batch_world::BatchPlugin::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
            })?;
            let pre = linker
                .instantiate_pre(component)
                .map_err(|e| format!("{e:#}"))?;
            batch_world::BatchPluginPre::new(pre)
                .map(Linked::Batch)
                .map_err(|e| format!("{e:#}"))
        } else if has(ROW_EXPORT) {
            let linker = linker(engine, |linker| {
                row_world::RowPlugin::add_to_linker::<_, HasSelf<_>>(linker, |state| state)
            })?;
            let pre = linker
                .instantiate_pre(component)
                .map_err(|e| format!("{e:#}"))?;
            row_world::RowPluginPre::new(pre)
                .map(Linked::Row)
                .map_err(|e| format!("{e:#}"))
        } else {
            Err(format!(
                "it exports neither `{BATCH_EXPORT}` nor `{ROW_EXPORT}` (it exports: {})",
                if exports.is_empty() {
                    "nothing".to_owned()
                } else {
                    exports.join(", ")
                }
            ))
        }
    }

    /// `batch` or `row`.
    pub(crate) fn world(&self) -> &'static str {
        match self {
            Linked::Batch(_) => "batch",
            Linked::Row(_) => "row",
        }
    }
}

fn linker(
    engine: &Engine,
    add_contract: impl FnOnce(&mut Linker<StoreState>) -> wasmtime::Result<()>,
) -> Result<Linker<StoreState>, String> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| format!("{e:#}"))?;
    add_contract(&mut linker).map_err(|e| format!("{e:#}"))?;
    Ok(linker)
}

enum Exports {
    Batch(batch_world::BatchPlugin),
    Row(row_world::RowPlugin),
}

/// What a plugin asked of one table.
enum Prepared {
    /// `wants-table: false`.
    Skip,
    Batch {
        /// Top-level columns sent, in schema order; `None`: all.
        projection: Option<Vec<usize>>,
        encoder: IpcEncoder,
    },
    Row {
        flat: FlatSchema,
        positions: Vec<usize>,
        routing: Vec<String>,
    },
}

/// A plugin's answer for one batch.
pub(crate) enum Answer {
    /// The plugin does not handle this table.
    NotWanted,
    Unchanged,
    Selection(BooleanArray),
    /// A replacement batch; `sent[i]` tells whether input column `i` was sent.
    Replaced {
        batch: RecordBatch,
        sent: Vec<bool>,
    },
}

/// A stage's instance.
pub(crate) struct Instance {
    store: Store<StoreState>,
    exports: Exports,
    tables: HashMap<TableId, Prepared>,
    timeout: Duration,
    scratch: Vec<u8>,
}

impl Instance {
    /// Instantiates and runs `init(config)`.
    pub(crate) fn new(
        engine: &PluginEngine,
        linked: &Linked,
        stage: Arc<str>,
        grants: &Grants,
        limits: &Limits,
        config: &str,
    ) -> Result<Self, PluginError> {
        let state = StoreState::new(Arc::clone(&stage), grants, limits)?;
        let mut store = Store::new(engine.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(PluginEngine::deadline_ticks(limits.timeout));
        let init_error = |error| PluginError::Init {
            stage: stage.to_string(),
            error,
        };
        let exports = match linked {
            Linked::Batch(pre) => pre.instantiate(&mut store).map(Exports::Batch),
            Linked::Row(pre) => pre.instantiate(&mut store).map(Exports::Row),
        }
        .map_err(|error| init_error(call_failure(&store, &error, limits.timeout)))?;
        let mut instance = Self {
            store,
            exports,
            tables: HashMap::new(),
            timeout: limits.timeout,
            scratch: Vec::new(),
        };
        instance.init(config).map_err(init_error)?;
        Ok(instance)
    }

    fn arm_deadline(&mut self) {
        self.store
            .set_epoch_deadline(PluginEngine::deadline_ticks(self.timeout));
    }

    fn init(&mut self, config: &str) -> Result<(), CallError> {
        self.arm_deadline();
        let result = match &self.exports {
            Exports::Batch(plugin) => plugin
                .weir_plugin_batch()
                .call_init(&mut self.store, config)
                .map(|r| r.map_err(reported)),
            Exports::Row(plugin) => plugin
                .weir_plugin_row()
                .call_init(&mut self.store, config)
                .map(|r| r.map_err(reported)),
        };
        self.finish_call(result)
    }

    fn finish_call<T>(
        &mut self,
        result: wasmtime::Result<Result<T, CallError>>,
    ) -> Result<T, CallError> {
        match result {
            Ok(answer) => answer,
            Err(error) => Err(call_failure(&self.store, &error, self.timeout)),
        }
    }

    /// Runs the plugin on `batch` of table `table`, preparing the table first when this
    /// instance has not seen it.
    pub(crate) fn process(
        &mut self,
        table: TableId,
        batch: &RecordBatch,
    ) -> Result<Answer, CallError> {
        if !self.tables.contains_key(&table) {
            let prepared = self.prepare(table, batch.schema_ref())?;
            self.tables.insert(table, prepared);
        }
        self.arm_deadline();
        let Self {
            store,
            exports,
            tables,
            scratch,
            timeout,
        } = self;
        let prepared = tables
            .get_mut(&table)
            .ok_or_else(|| CallError::InvalidOutput("table not prepared".into()))?;
        let answer = match (exports, prepared) {
            (_, Prepared::Skip) => return Ok(Answer::NotWanted),
            (
                Exports::Batch(plugin),
                Prepared::Batch {
                    projection,
                    encoder,
                },
            ) => {
                let sent_batch = match projection {
                    Some(columns) => batch.project(columns).map_err(invalid_input)?,
                    None => batch.clone(),
                };
                encoder.batch(&sent_batch, scratch).map_err(invalid_input)?;
                let result = plugin
                    .weir_plugin_batch()
                    .call_process(&mut *store, table, scratch);
                let output = match result {
                    Ok(output) => output.map_err(reported)?,
                    Err(error) => return Err(call_failure(store, &error, *timeout)),
                };
                batch_answer(output, batch, projection.as_deref())?
            }
            (
                Exports::Row(plugin),
                Prepared::Row {
                    flat,
                    positions,
                    routing,
                },
            ) => {
                let rows = rows::to_rows(flat, positions, batch)?;
                let result = plugin
                    .weir_plugin_row()
                    .call_process(&mut *store, table, &rows);
                drop(rows);
                let output = match result {
                    Ok(output) => output.map_err(reported)?,
                    Err(error) => return Err(call_failure(store, &error, *timeout)),
                };
                row_answer(output, batch, flat, positions, routing)?
            }
            _ => return Err(CallError::InvalidOutput("world mismatch".into())),
        };
        Ok(answer)
    }

    fn prepare(&mut self, table: TableId, schema: &Arc<Schema>) -> Result<Prepared, CallError> {
        self.arm_deadline();
        match &self.exports {
            Exports::Batch(plugin) => {
                let full = IpcEncoder::new().schema(schema).map_err(invalid_input)?;
                let result = plugin
                    .weir_plugin_batch()
                    .call_prepare(&mut self.store, table, &full)
                    .map(|r| r.map_err(reported));
                let plan = self.finish_call(result)?;
                if !plan.wants_table {
                    return Ok(Prepared::Skip);
                }
                let projection = project(schema, &plan.columns);
                let encoder = IpcEncoder::new();
                Ok(Prepared::Batch {
                    projection,
                    encoder,
                })
            }
            Exports::Row(plugin) => {
                let flat = FlatSchema::new(schema);
                let result = plugin
                    .weir_plugin_row()
                    .call_prepare(&mut self.store, table, &flat.info)
                    .map(|r| r.map_err(reported));
                let plan = self.finish_call(result)?;
                if !plan.wants_table {
                    return Ok(Prepared::Skip);
                }
                for name in &plan.routing {
                    if routing_type(name).is_none() {
                        return Err(CallError::InvalidOutput(format!(
                            "routing column {name:?} is not one of _topic, _key, _partition"
                        )));
                    }
                }
                let positions = flat.positions(&plan.columns);
                Ok(Prepared::Row {
                    flat,
                    positions,
                    routing: plan.routing,
                })
            }
        }
    }
}

/// Top-level column indexes for a plan's column names; `None` when all are wanted.
fn project(schema: &Schema, names: &[String]) -> Option<Vec<usize>> {
    if names.is_empty() {
        return None;
    }
    let columns: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, field)| names.iter().any(|name| name == field.name()))
        .map(|(index, _)| index)
        .collect();
    (columns.len() < schema.fields().len()).then_some(columns)
}

fn batch_answer(
    output: batch_world::exports::weir::plugin::batch::BatchOutput,
    input: &RecordBatch,
    projection: Option<&[usize]>,
) -> Result<Answer, CallError> {
    use batch_world::exports::weir::plugin::batch::BatchOutput;
    Ok(match output {
        BatchOutput::Unchanged => Answer::Unchanged,
        BatchOutput::Selection(bits) => {
            Answer::Selection(selection_from_bits(bits, input.num_rows())?)
        }
        BatchOutput::Replaced(bytes) => {
            let batch = decode_stream(bytes)
                .map_err(|e| CallError::InvalidOutput(format!("replaced batch: {e}")))?;
            let mut sent = vec![projection.is_none(); input.num_columns()];
            for &column in projection.unwrap_or_default() {
                sent[column] = true;
            }
            Answer::Replaced { batch, sent }
        }
    })
}

fn selection_from_bits(bits: Vec<u8>, rows: usize) -> Result<BooleanArray, CallError> {
    if bits.len() * 8 < rows {
        return Err(CallError::InvalidOutput(format!(
            "selection of {} bytes for {rows} rows",
            bits.len()
        )));
    }
    let buffer = BooleanBuffer::new(Buffer::from_vec(bits), 0, rows);
    Ok(BooleanArray::new(buffer, None))
}

fn row_answer(
    output: row_world::exports::weir::plugin::row::RowOutput,
    input: &RecordBatch,
    flat: &FlatSchema,
    positions: &[usize],
    routing: &[String],
) -> Result<Answer, CallError> {
    use row_world::exports::weir::plugin::row::RowOutput;
    match output {
        RowOutput::Unchanged => Ok(Answer::Unchanged),
        RowOutput::Selection(keep) => {
            if keep.len() != input.num_rows() {
                return Err(CallError::InvalidOutput(format!(
                    "selection of {} flags for {} rows",
                    keep.len(),
                    input.num_rows()
                )));
            }
            Ok(Answer::Selection(BooleanArray::from(keep)))
        }
        RowOutput::Replaced(rows) => {
            let width = positions.len() + routing.len();
            if let Some(row) = rows.iter().find(|row| row.len() != width) {
                return Err(CallError::InvalidOutput(format!(
                    "a replaced row has {} values, the plan {width} ({} read, {} routing)",
                    row.len(),
                    positions.len(),
                    routing.len()
                )));
            }
            rows_to_batch(&rows, input, flat, positions, routing).map_err(CallError::InvalidOutput)
        }
    }
}

/// The batch a row plugin's replaced rows stand for, before carry-over.
fn rows_to_batch(
    rows: &[Vec<row_world::exports::weir::plugin::row::Value>],
    input: &RecordBatch,
    flat: &FlatSchema,
    positions: &[usize],
    routing: &[String],
) -> Result<Answer, String> {
    let schema = input.schema_ref();
    let mut fields: Vec<Arc<Field>> = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    let mut sent = vec![false; input.num_columns()];
    // The `_before` column and, once its first child is seen, its place in the output.
    let mut before_children: Option<(usize, usize, Vec<Option<ArrayRef>>)> = None;
    for (index, &position) in positions.iter().enumerate() {
        match flat.sources[position] {
            Source::Column(column) => {
                let field = schema.field(column);
                arrays.push(rows::from_rows(field, rows, index)?);
                fields.push(Arc::new(field.clone()));
                sent[column] = true;
            }
            Source::Before { column, child } => {
                let DataType::Struct(children) = schema.field(column).data_type() else {
                    return Err("`_before` is not a struct".into());
                };
                let place = fields.len();
                let entry = before_children
                    .get_or_insert_with(|| (column, place, vec![None; children.len()]));
                entry.2[child] = Some(rows::from_rows(&children[child], rows, index)?);
            }
        }
    }
    if let Some((column, place, children)) = before_children {
        let field = schema.field(column);
        let DataType::Struct(child_fields) = field.data_type() else {
            return Err("`_before` is not a struct".into());
        };
        let input_before = input
            .column(column)
            .as_any()
            .downcast_ref::<arrow::array::StructArray>()
            .ok_or_else(|| "`_before` is not a struct array".to_owned())?;
        let before = rows::rebuild_before(input_before, child_fields, children, rows.len())?;
        arrays.insert(place, before);
        fields.insert(place, Arc::new(field.clone()));
        sent[column] = true;
    }
    for (offset, name) in routing.iter().enumerate() {
        let data_type =
            routing_type(name).ok_or_else(|| format!("unknown routing column {name}"))?;
        let field = Field::new(name, data_type, true);
        arrays.push(rows::from_rows(&field, rows, positions.len() + offset)?);
        fields.push(Arc::new(field));
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    let batch =
        RecordBatch::try_new_with_options(schema, arrays, &options).map_err(|e| e.to_string())?;
    Ok(Answer::Replaced { batch, sent })
}

/// The Arrow type of a routing column a row plugin may set.
fn routing_type(name: &str) -> Option<DataType> {
    Some(match name {
        "_topic" => DataType::Utf8,
        "_key" => DataType::Binary,
        "_partition" => DataType::Int32,
        _ => return None,
    })
}

fn invalid_input(error: impl std::fmt::Display) -> CallError {
    CallError::InvalidOutput(format!("preparing the plugin's input: {error}"))
}

/// The plugin's own error (both worlds share the type).
fn reported(error: batch_world::weir::plugin::types::PluginError) -> CallError {
    use batch_world::weir::plugin::types::PluginError as E;
    let (kind, message) = match error {
        E::InvalidConfig(message) => ("invalid-config", message),
        E::InvalidInput(message) => ("invalid-input", message),
        E::Failed(message) => ("failed", message),
    };
    CallError::Reported { kind, message }
}

/// Names why a call failed: the memory cap, the deadline, or another trap.
fn call_failure(
    store: &Store<StoreState>,
    error: &wasmtime::Error,
    timeout: Duration,
) -> CallError {
    if store.data().limiter.exceeded {
        return CallError::MemoryCap(store.data().limiter.max_bytes());
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return CallError::Timeout(timeout);
    }
    let written = store.data().stderr.take();
    if written.is_empty() {
        CallError::Trap(format!("{error:#}"))
    } else {
        CallError::Trap(format!("{error:#}; the plugin wrote: {written}"))
    }
}
