//! A plugin stage: one component, its limits and grants, a pool of instances, and
//! what happens to a batch it selects.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::array::{Array, ArrayRef, AsArray, ListBuilder, UInt16Builder, new_null_array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt16Type};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::engine::PluginEngine;
use super::error::{CallError, PluginError};
use super::instance::{Answer, Instance, Linked, TableId};
use super::sandbox::{Grants, Limits};
use crate::contract::TableSelector;
use crate::contract::columns::{
    BEFORE, COMMIT_LSN, COMMIT_TS, LSN, OP, SEQ, UNCHANGED, XID, metadata,
};

/// What happens to a batch when the plugin fails on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OnError {
    /// Stop the pipeline (nothing is acknowledged past the batch).
    #[default]
    Fail,
    /// Drop the batch, log it, go on.
    Skip,
    /// Hand the batch's rows and the error to the dead-letter topic, go on.
    DeadLetter,
}

/// One `plugins:` entry of a pipeline.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// The stage's name, in logs and metrics.
    pub name: String,
    /// The component file.
    pub wasm: PathBuf,
    /// Tables the stage applies to; empty: all.
    pub tables: Vec<TableSelector>,
    /// The stage's `config`, rendered as JSON for `init`.
    pub config: serde_json::Value,
    /// The failure policy.
    pub on_error: OnError,
    /// Deadline and memory cap per instance.
    pub limits: Limits,
    /// What the plugin may reach beyond computing.
    pub grants: Grants,
}

impl StageSpec {
    /// A stage with the defaults: all tables, `{}` config, `fail`, default limits,
    /// nothing granted.
    pub fn new(name: impl Into<String>, wasm: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            wasm: wasm.into(),
            tables: Vec::new(),
            config: serde_json::Value::Object(serde_json::Map::new()),
            on_error: OnError::Fail,
            limits: Limits::default(),
            grants: Grants::default(),
        }
    }
}

/// What a stage made of one batch.
#[derive(Debug)]
pub enum StageOutcome {
    /// The batch to hand on (possibly with fewer rows, possibly empty).
    Passed(RecordBatch),
    /// The plugin failed; `on_error` decides.
    Failed {
        /// The batch the plugin was given.
        batch: RecordBatch,
        /// Why.
        error: CallError,
    },
}

/// A loaded stage. Safe to share between threads: each call takes an instance from
/// the pool (or makes one) and returns it afterwards, unless it trapped.
pub struct PluginStage {
    spec: StageSpec,
    name: Arc<str>,
    engine: PluginEngine,
    linked: Linked,
    config_json: String,
    idle: Mutex<Vec<Instance>>,
    tables: Mutex<TableIds>,
}

impl std::fmt::Debug for PluginStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginStage")
            .field("name", &self.name)
            .field("world", &self.linked.world())
            .finish_non_exhaustive()
    }
}

/// Most idle instances kept per stage: one per thread that may run the chain.
const MAX_IDLE_INSTANCES: usize = 4;

impl PluginStage {
    /// Loads, links and instantiates the stage's component once, so a bad file, a
    /// component of another contract or a config the plugin rejects fails here,
    /// before the pipeline connects anywhere.
    pub fn new(engine: &PluginEngine, spec: StageSpec) -> Result<Self, PluginError> {
        let component = engine.load(&spec.wasm)?;
        let linked = Linked::new(engine, &component).map_err(|message| PluginError::Contract {
            stage: spec.name.clone(),
            path: spec.wasm.clone(),
            message,
        })?;
        let name: Arc<str> = spec.name.as_str().into();
        let config_json = spec.config.to_string();
        let first = Instance::new(
            engine,
            &linked,
            Arc::clone(&name),
            &spec.grants,
            &spec.limits,
            &config_json,
        )?;
        tracing::debug!(stage = %name, world = linked.world(), "plugin loaded");
        Ok(Self {
            spec,
            name,
            engine: engine.clone(),
            linked,
            config_json,
            idle: Mutex::new(vec![first]),
            tables: Mutex::new(TableIds::default()),
        })
    }

    /// The stage's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stage's spec.
    pub fn spec(&self) -> &StageSpec {
        &self.spec
    }

    /// `batch` or `row`: the contract world the component implements.
    pub fn world(&self) -> &'static str {
        self.linked.world()
    }

    /// Whether the stage applies to the batch's table.
    pub fn selects(&self, schema: &Schema) -> bool {
        if self.spec.tables.is_empty() {
            return true;
        }
        let get = |key| schema.metadata().get(key).map(String::as_str);
        match (get(metadata::SCHEMA), get(metadata::TABLE)) {
            (Some(table_schema), Some(table)) => self
                .spec
                .tables
                .iter()
                .any(|selector| selector.matches(table_schema, table)),
            _ => false,
        }
    }

    /// Runs the plugin on `batch`. A trapped instance is dropped; the next call
    /// instantiates a fresh one.
    pub fn process(&self, batch: RecordBatch) -> Result<StageOutcome, PluginError> {
        let _span =
            tracing::trace_span!("plugin", stage = %self.name, rows = batch.num_rows()).entered();
        let table = self
            .tables
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .id_for(batch.schema_ref());
        let mut instance = match self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
        {
            Some(instance) => instance,
            None => Instance::new(
                &self.engine,
                &self.linked,
                Arc::clone(&self.name),
                &self.spec.grants,
                &self.spec.limits,
                &self.config_json,
            )?,
        };
        let result = instance
            .process(table, &batch)
            .and_then(|answer| apply(answer, &batch));
        match &result {
            Err(error) if error.poisons_instance() => {
                tracing::debug!(stage = %self.name, %error, "dropping a failed plugin instance");
            }
            _ => {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE_INSTANCES {
                    idle.push(instance);
                }
            }
        }
        Ok(match result {
            Ok(output) => StageOutcome::Passed(output),
            Err(error) => StageOutcome::Failed { batch, error },
        })
    }
}

/// Table ids by schema: a new schema (a new table or schema version, or a previous
/// stage's new output shape) gets a new id and a `prepare` in every instance.
#[derive(Default)]
struct TableIds {
    last: Option<(SchemaRef, TableId)>,
    ids: HashMap<SchemaRef, TableId>,
}

impl TableIds {
    fn id_for(&mut self, schema: &SchemaRef) -> TableId {
        // Consecutive batches of one table share their schema `Arc`: skip the hash.
        if let Some((last, id)) = &self.last
            && Arc::ptr_eq(last, schema)
        {
            return *id;
        }
        let next = TableId::try_from(self.ids.len()).unwrap_or(TableId::MAX);
        let id = *self.ids.entry(Arc::clone(schema)).or_insert(next);
        self.last = Some((Arc::clone(schema), id));
        id
    }
}

/// The batch a plugin's answer stands for.
fn apply(answer: Answer, input: &RecordBatch) -> Result<RecordBatch, CallError> {
    match answer {
        Answer::NotWanted | Answer::Unchanged => Ok(input.clone()),
        Answer::Selection(selection) => {
            match selection.true_count() {
                all if all == input.num_rows() => return Ok(input.clone()),
                0 => return Ok(input.slice(0, 0)),
                _ => {}
            }
            filter_record_batch(input, &selection)
                .map_err(|e| CallError::InvalidOutput(format!("applying the selection: {e}")))
        }
        Answer::Replaced { batch, sent } => merge(input, batch, &sent),
    }
}

/// Columns every ChangeBatch carries and downstream stages rely on.
const REQUIRED_METADATA: [&str; 6] = [OP, LSN, COMMIT_LSN, XID, COMMIT_TS, SEQ];

/// A replaced batch with what the plugin could not have dropped carried over from the
/// input: columns it was not sent, and weir's metadata columns. Carried columns keep
/// their place: each goes right after the nearest column before it in the input that
/// the result has.
fn merge(
    input: &RecordBatch,
    output: RecordBatch,
    sent: &[bool],
) -> Result<RecordBatch, CallError> {
    let input_schema = input.schema_ref();
    let output_schema = output.schema_ref();
    let rows = output.num_rows();
    let same_rows = rows == input.num_rows();
    let mut fields: Vec<Arc<Field>> = Vec::with_capacity(output.num_columns() + 8);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(output.num_columns() + 8);
    for (field, column) in output_schema.fields().iter().zip(output.columns()) {
        // Keep weir's field metadata (`weir.pg_type`) when the plugin returned a
        // column of the same name and type without it.
        let field = match input_schema.field_with_name(field.name()) {
            Ok(original)
                if original.data_type() == field.data_type() && field.metadata().is_empty() =>
            {
                Arc::new(original.clone().with_nullable(field.is_nullable()))
            }
            _ => Arc::clone(field),
        };
        fields.push(field);
        columns.push(Arc::clone(column));
    }
    for (index, field) in input_schema.fields().iter().enumerate() {
        if output_schema.field_with_name(field.name()).is_ok() {
            continue;
        }
        let metadata_column = field.name().starts_with('_');
        let was_sent = sent.get(index).copied().unwrap_or(true);
        if was_sent && !metadata_column {
            continue; // the plugin dropped it on purpose
        }
        let column = if same_rows {
            Arc::clone(input.column(index))
        } else if field.name() == BEFORE || field.name() == UNCHANGED {
            new_null_array(field.data_type(), rows)
        } else {
            let why = if REQUIRED_METADATA.contains(&field.name().as_str()) {
                "a metadata column"
            } else if metadata_column {
                "a routing column"
            } else {
                "a column the plugin did not read"
            };
            return Err(CallError::InvalidOutput(format!(
                "the plugin changed the row count from {} to {rows} but left out `{}`, {why}",
                input.num_rows(),
                field.name()
            )));
        };
        let position = input_schema.fields()[..index]
            .iter()
            .rev()
            .find_map(|before| fields.iter().position(|f| f.name() == before.name()))
            .map_or(0, |p| p + 1);
        fields.insert(position, Arc::clone(field));
        columns.insert(position, column);
    }
    let mut metadata = input_schema.metadata().clone();
    metadata.extend(
        output_schema
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
    if let Ok(index) = schema.index_of(UNCHANGED) {
        columns[index] = remap_unchanged(input_schema, &schema, &columns[index])?;
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema, columns, &options)
        .map_err(|e| CallError::InvalidOutput(format!("the replaced batch: {e}")))
}

/// The names of a ChangeBatch's user columns in order: the positions `_unchanged`
/// counts in.
fn user_columns(schema: &Schema) -> Vec<&str> {
    schema
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with('_') || f.metadata().contains_key(metadata::COLUMN_NAME))
        .map(|f| f.name().as_str())
        .collect()
}

/// `_unchanged` lists positions among the user columns. When a plugin dropped,
/// added or reordered user columns, the positions are translated (by name, or by
/// position when only names changed, as with a rename) so they still point at the
/// unchanged TOAST columns; positions of dropped columns go.
fn remap_unchanged(
    before: &Schema,
    after: &Schema,
    unchanged: &ArrayRef,
) -> Result<ArrayRef, CallError> {
    let (old, new) = (user_columns(before), user_columns(after));
    if old == new {
        return Ok(Arc::clone(unchanged));
    }
    let same_shape = old.len() == new.len();
    let target: Vec<Option<u16>> = old
        .iter()
        .enumerate()
        .map(|(position, name)| {
            let moved = new.iter().position(|n| n == name);
            let kept = moved.or_else(|| same_shape.then_some(position));
            kept.and_then(|p| u16::try_from(p).ok())
        })
        .collect();
    let Some(list) = unchanged.as_list_opt::<i32>() else {
        return Ok(Arc::clone(unchanged));
    };
    let mut builder = ListBuilder::new(UInt16Builder::new()).with_field(match list.data_type() {
        DataType::List(field) => Arc::clone(field),
        _ => return Ok(Arc::clone(unchanged)),
    });
    for row in 0..list.len() {
        if list.is_null(row) {
            builder.append(false);
            continue;
        }
        let positions = list.value(row);
        let Some(positions) = positions.as_primitive_opt::<UInt16Type>() else {
            return Err(CallError::InvalidOutput(
                "`_unchanged` is not a list of uint16".into(),
            ));
        };
        for position in positions.values() {
            if let Some(Some(mapped)) = target.get(usize::from(*position)) {
                builder.values().append_value(*mapped);
            }
        }
        builder.append(true);
    }
    Ok(Arc::new(builder.finish()))
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int32Array, StringArray, UInt8Array};
    use arrow::datatypes::DataType;

    use super::*;

    fn input() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(OP, DataType::UInt8, false),
            Field::new("id", DataType::Int32, false),
            Field::new("email", DataType::Utf8, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt8Array::from(vec![b'c', b'u'])),
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["a@x", "b@x"])),
                Arc::new(StringArray::from(vec!["A", "B"])),
            ],
        )
        .expect("valid")
    }

    fn names(batch: &RecordBatch) -> Vec<String> {
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    #[test]
    fn unsent_and_metadata_columns_keep_their_place() {
        let input = input();
        // Sent only `email`, which the plugin rewrote.
        let output = input.project(&[2]).expect("project");
        let merged = merge(&input, output, &[false, false, true, false]).expect("merges");
        assert_eq!(names(&merged), ["_op", "id", "email", "name"]);
    }

    #[test]
    fn dropped_sent_columns_stay_dropped() {
        let input = input();
        let output = input.project(&[1, 3]).expect("project");
        let merged = merge(&input, output, &[true; 4]).expect("merges");
        assert_eq!(names(&merged), ["_op", "id", "name"]);
    }

    #[test]
    fn unchanged_positions_follow_dropped_columns() {
        // Columns a, b, c; c was not sent by PostgreSQL (unchanged TOAST) in row 0.
        let mut unchanged = ListBuilder::new(UInt16Builder::new());
        unchanged.values().append_value(2);
        unchanged.append(true);
        unchanged.append(false);
        let unchanged = unchanged.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new(OP, DataType::UInt8, false),
            Field::new("a", DataType::Int32, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Utf8, true),
            Field::new(UNCHANGED, unchanged.data_type().clone(), true),
        ]));
        let input = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt8Array::from(vec![b'u', b'u'])),
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["x", "y"])),
                Arc::new(StringArray::from(vec![None, Some("z")])),
                Arc::new(unchanged),
            ],
        )
        .expect("valid");
        // The plugin dropped `b`: `c` moves from position 2 to 1.
        let output = input.project(&[0, 1, 3]).expect("project");
        let merged = merge(&input, output, &[true; 5]).expect("merges");
        let list = merged
            .column_by_name(UNCHANGED)
            .expect("kept")
            .as_list::<i32>();
        let first = list.value(0);
        assert_eq!(first.as_primitive::<UInt16Type>().values().as_ref(), [1]);
        assert!(list.is_null(1));
    }

    #[test]
    fn a_changed_row_count_cannot_lose_metadata() {
        let input = input();
        let output = input.slice(0, 1).project(&[1, 2, 3]).expect("project");
        let error = merge(&input, output, &[true; 4]).expect_err("rejected");
        assert!(error.to_string().contains("`_op`"), "{error}");
    }
}
