//! `project`: chooses and renames the columns that reach Kafka.
//!
//! ```yaml
//! config: { keep: [id, status, total] }                 # only these user columns
//! config: { drop: [internal_notes], rename: { total: amount } }
//! ```
//!
//! Set at most one of `keep` and `drop`; `rename` maps old names to new ones and
//! applies after them. weir's metadata columns (`_op`, `_lsn`, …) always stay. The
//! old row image (`_before`) gets the same projection, so before and after keep the
//! same shape, and `weir.primary_key` follows renames (a dropped key column leaves the
//! key, with a warning in weir's log).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use weir_guest::batch::arrow::array::cast::AsArray;
use weir_guest::batch::arrow::array::{Array, ArrayRef, StructArray};
use weir_guest::batch::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use weir_guest::batch::{BatchPlugin, Context, Output, Plan, RecordBatch, Table};
use weir_guest::{Error, Result};

/// The stage's `config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// User columns to keep (all others go).
    pub keep: Option<Vec<String>>,
    /// User columns to drop.
    pub drop: Option<Vec<String>>,
    /// Old name → new name.
    #[serde(default)]
    pub rename: BTreeMap<String, String>,
}

/// The plugin.
#[derive(Debug)]
pub struct Project {
    config: Config,
    /// The output schema per input schema, computed once per table.
    plans: Vec<(SchemaRef, Vec<Option<usize>>, SchemaRef)>,
}

const PRIMARY_KEY: &str = "weir.primary_key";

impl Project {
    /// Whether a user column survives.
    fn keeps(&self, name: &str) -> bool {
        if name.starts_with('_') {
            return true;
        }
        match (&self.config.keep, &self.config.drop) {
            (Some(keep), _) => keep.iter().any(|k| k == name),
            (_, Some(drop)) => !drop.iter().any(|d| d == name),
            _ => true,
        }
    }

    fn renamed<'a>(&'a self, name: &'a str) -> &'a str {
        self.config.rename.get(name).map_or(name, String::as_str)
    }

    fn field(&self, field: &Field) -> Field {
        field.clone().with_name(self.renamed(field.name()))
    }

    /// The output schema of `schema` and, per output column, the input column.
    fn plan(&self, schema: &Schema) -> Result<(Vec<usize>, SchemaRef)> {
        let mut indexes = Vec::new();
        let mut fields: Vec<FieldRef> = Vec::new();
        for (index, field) in schema.fields().iter().enumerate() {
            if !self.keeps(field.name()) {
                continue;
            }
            indexes.push(index);
            let field = match field.data_type() {
                DataType::Struct(children) if field.name() == "_before" => {
                    let kept: Vec<FieldRef> = children
                        .iter()
                        .filter(|child| self.keeps(child.name()))
                        .map(|child| Arc::new(self.field(child)))
                        .collect();
                    field
                        .as_ref()
                        .clone()
                        .with_data_type(DataType::Struct(kept.into()))
                }
                _ => self.field(field),
            };
            if fields.iter().any(|f| f.name() == field.name()) {
                return Err(Error::config(format!(
                    "project: two columns would be named {}",
                    field.name()
                )));
            }
            fields.push(Arc::new(field));
        }
        let mut metadata = schema.metadata().clone();
        if let Some(key) = metadata.get(PRIMARY_KEY).cloned() {
            let mut columns = Vec::new();
            for column in key.split(',').filter(|c| !c.is_empty()) {
                if self.keeps(column) {
                    columns.push(self.renamed(column).to_owned());
                } else {
                    weir_guest::warn!("project drops primary key column {column}");
                }
            }
            metadata.insert(PRIMARY_KEY.to_owned(), columns.join(","));
        }
        Ok((
            indexes,
            Arc::new(Schema::new_with_metadata(fields, metadata)),
        ))
    }
}

impl BatchPlugin for Project {
    type Config = Config;

    fn init(config: Config) -> Result<Self> {
        if config.keep.is_some() && config.drop.is_some() {
            return Err(Error::config("project: set `keep` or `drop`, not both"));
        }
        if let Some(name) = config
            .rename
            .keys()
            .chain(config.rename.values())
            .find(|n| n.starts_with('_'))
        {
            return Err(Error::config(format!(
                "project: cannot rename {name}: names starting with `_` are weir's"
            )));
        }
        Ok(Self {
            config,
            plans: Vec::new(),
        })
    }

    fn prepare(&mut self, table: &Table) -> Result<Plan> {
        let (indexes, output) = self.plan(&table.arrow)?;
        let unchanged =
            indexes.len() == table.arrow.fields().len() && self.config.rename.is_empty();
        if unchanged {
            return Ok(Plan::skip());
        }
        let indexes = indexes.into_iter().map(Some).collect();
        self.plans.push((Arc::clone(&table.arrow), indexes, output));
        Ok(Plan::all())
    }

    fn process(&mut self, batch: RecordBatch, ctx: &Context<'_>) -> Result<Output> {
        let (_, indexes, output) = self
            .plans
            .iter()
            .rev()
            .find(|(schema, _, _)| Arc::ptr_eq(schema, &ctx.table.arrow))
            .ok_or_else(|| Error::failed("project: table not prepared"))?;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(indexes.len());
        for (&index, field) in indexes.iter().zip(output.fields()) {
            let index = index.ok_or_else(|| Error::failed("project: bad plan"))?;
            let column = batch.column(index);
            columns.push(match field.data_type() {
                DataType::Struct(children) if field.name() == "_before" => {
                    let before = column.as_struct();
                    let input_children = match batch.schema_ref().field(index).data_type() {
                        DataType::Struct(fields) => fields.clone(),
                        _ => return Err(Error::failed("project: `_before` is not a struct")),
                    };
                    let arrays: Vec<ArrayRef> = input_children
                        .iter()
                        .zip(before.columns())
                        .filter(|(child, _)| self.keeps(child.name()))
                        .map(|(_, array)| Arc::clone(array))
                        .collect();
                    Arc::new(StructArray::try_new(
                        children.clone(),
                        arrays,
                        before.nulls().cloned(),
                    )?)
                }
                _ => Arc::clone(column),
            });
        }
        Ok(Output::Replace(RecordBatch::try_new(
            Arc::clone(output),
            columns,
        )?))
    }
}

weir_guest::export_batch_plugin!(Project);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use weir_guest::batch::arrow::array::{Int32Array, StringArray, UInt8Array};
    use weir_guest::batch::testing::Harness;

    use super::*;

    fn customers() -> RecordBatch {
        let children = vec![
            Field::new("id", DataType::Int32, true),
            Field::new("email", DataType::Utf8, true),
            Field::new("notes", DataType::Utf8, true),
        ];
        let before = StructArray::new_null(children.clone().into(), 1);
        let schema = Schema::new(vec![
            Field::new("_op", DataType::UInt8, false),
            Field::new("id", DataType::Int32, false),
            Field::new("email", DataType::Utf8, true),
            Field::new("notes", DataType::Utf8, true),
            Field::new("_before", DataType::Struct(children.into()), true),
        ])
        .with_metadata(HashMap::from([(PRIMARY_KEY.to_owned(), "id".to_owned())]));
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(UInt8Array::from(vec![b'c'])),
                Arc::new(Int32Array::from(vec![7])),
                Arc::new(StringArray::from(vec!["a@x"])),
                Arc::new(StringArray::from(vec!["private"])),
                Arc::new(before),
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
    fn drop_and_rename_apply_to_both_images_and_the_key() {
        let mut harness =
            Harness::<Project>::new(r#"{"drop": ["notes"], "rename": {"id": "customer_id"}}"#)
                .expect("init");
        let out = harness.run(&customers()).expect("runs");
        assert_eq!(names(&out), ["_op", "customer_id", "email", "_before"]);
        let DataType::Struct(children) = out.schema().field(3).data_type().clone() else {
            panic!("_before is a struct");
        };
        let children: Vec<&str> = children.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(children, ["customer_id", "email"]);
        assert_eq!(out.schema().metadata()[PRIMARY_KEY], "customer_id");
    }

    #[test]
    fn keep_never_drops_metadata() {
        let mut harness = Harness::<Project>::new(r#"{"keep": ["email"]}"#).expect("init");
        let out = harness.run(&customers()).expect("runs");
        assert_eq!(names(&out), ["_op", "email", "_before"]);
        assert_eq!(out.schema().metadata()[PRIMARY_KEY], "");
    }

    #[test]
    fn bad_configs_are_refused() {
        assert!(Harness::<Project>::new(r#"{"keep": ["a"], "drop": ["b"]}"#).is_err());
        assert!(Harness::<Project>::new(r#"{"rename": {"_op": "op"}}"#).is_err());
        let mut harness = Harness::<Project>::new(r#"{"rename": {"email": "id"}}"#).expect("init");
        let error = harness.run(&customers()).expect_err("duplicate name");
        assert!(error.message.contains("two columns"), "{error}");
    }
}
