//! `route`: chooses each row's Kafka topic, key or partition from its values.
//!
//! ```yaml
//! config:
//!   topic: "orders.{region}"          # template over columns, {schema} and {table}
//!   key: "{customer_id}"              # template; bytes of the rendered text
//!   partition: shard                  # an integer column; or a number: partition: 0
//! ```
//!
//! Each setting is optional; what is set becomes the routing columns `_topic`,
//! `_key` and `_partition`, which take precedence over the pipeline's own topic and
//! partition rules. Templates write `{column}` for a value (NULL renders empty) and
//! `{{`/`}}` for braces. A column a table lacks is an error for that table.

use std::sync::Arc;

use serde::Deserialize;
use weir_guest::batch::arrow::array::cast::AsArray;
use weir_guest::batch::arrow::array::{Array, ArrayRef, BinaryArray, Int32Array, StringArray};
use weir_guest::batch::arrow::datatypes::{
    DataType, Field, Int8Type, Int16Type, Int32Type, Int64Type, Schema, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use weir_guest::batch::{BatchPlugin, Context, Output, Plan, RecordBatch, Table};
use weir_guest::{Error, Result};

/// A partition: a fixed number or an integer column.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Partition {
    /// Always this partition.
    Fixed(i32),
    /// The value of this column.
    Column(String),
}

/// The stage's `config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Topic template.
    pub topic: Option<String>,
    /// Key template.
    pub key: Option<String>,
    /// Partition.
    pub partition: Option<Partition>,
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A column's value.
    Column(String),
    /// The table's schema.
    Schema,
    /// The table's name.
    Table,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

impl Template {
    /// Parses `text`: `{name}` placeholders, `{{` and `}}` escapes.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    if name.is_empty() {
                        return Err(format!("template {text:?}: empty placeholder"));
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(match name.as_str() {
                        "schema" => Piece::Schema,
                        "table" => Piece::Table,
                        _ => Piece::Column(name),
                    });
                }
                '}' => return Err(format!("template {text:?}: unmatched `}}` (write `}}}}`)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Self(pieces))
    }

    fn columns(&self) -> impl Iterator<Item = &String> {
        self.0.iter().filter_map(|piece| match piece {
            Piece::Column(name) => Some(name),
            _ => None,
        })
    }

    /// The rendered text of every row.
    fn render(&self, batch: &RecordBatch, table: &Table) -> Result<Vec<String>> {
        let rows = batch.num_rows();
        let mut out = vec![String::new(); rows];
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.iter_mut().for_each(|s| s.push_str(text)),
                Piece::Schema => out.iter_mut().for_each(|s| s.push_str(&table.schema)),
                Piece::Table => out.iter_mut().for_each(|s| s.push_str(&table.name)),
                Piece::Column(name) => {
                    let array = batch.column_by_name(name).ok_or_else(|| {
                        Error::input(format!(
                            "table {}.{} has no column {name}",
                            table.schema, table.name
                        ))
                    })?;
                    append_values(array, &mut out)
                        .map_err(|why| Error::input(format!("column {name}: {why}")))?;
                }
            }
        }
        Ok(out)
    }
}

/// Appends each row's value, as text, to `out`.
fn append_values(array: &ArrayRef, out: &mut [String]) -> std::result::Result<(), String> {
    use std::fmt::Write;
    macro_rules! each {
        ($values:expr) => {{
            let values = $values;
            for (index, s) in out.iter_mut().enumerate() {
                if values.is_valid(index) {
                    let _ = write!(s, "{}", values.value(index));
                }
            }
        }};
    }
    match array.data_type() {
        DataType::Utf8 => each!(array.as_string::<i32>()),
        DataType::Boolean => each!(array.as_boolean()),
        DataType::Int8 => each!(array.as_primitive::<Int8Type>()),
        DataType::Int16 => each!(array.as_primitive::<Int16Type>()),
        DataType::Int32 => each!(array.as_primitive::<Int32Type>()),
        DataType::Int64 => each!(array.as_primitive::<Int64Type>()),
        DataType::UInt8 => each!(array.as_primitive::<UInt8Type>()),
        DataType::UInt16 => each!(array.as_primitive::<UInt16Type>()),
        DataType::UInt32 => each!(array.as_primitive::<UInt32Type>()),
        DataType::UInt64 => each!(array.as_primitive::<UInt64Type>()),
        DataType::Decimal128(_, _) => {
            let values =
                array.as_primitive::<weir_guest::batch::arrow::datatypes::Decimal128Type>();
            for (index, s) in out.iter_mut().enumerate() {
                if values.is_valid(index) {
                    s.push_str(&values.value_as_string(index));
                }
            }
        }
        other => return Err(format!("{other} values cannot be used in a template")),
    }
    Ok(())
}

/// The plugin.
#[derive(Debug)]
pub struct Route {
    topic: Option<Template>,
    key: Option<Template>,
    partition: Option<Partition>,
}

impl BatchPlugin for Route {
    type Config = Config;

    fn init(config: Config) -> Result<Self> {
        if config.topic.is_none() && config.key.is_none() && config.partition.is_none() {
            return Err(Error::config(
                "route: set at least one of `topic`, `key`, `partition`",
            ));
        }
        let parse = |t: Option<String>| {
            t.map(|t| Template::parse(&t))
                .transpose()
                .map_err(Error::config)
        };
        Ok(Self {
            topic: parse(config.topic)?,
            key: parse(config.key)?,
            partition: config.partition,
        })
    }

    fn prepare(&mut self, table: &Table) -> Result<Plan> {
        let mut columns: Vec<String> = Vec::new();
        for name in self
            .topic
            .iter()
            .chain(&self.key)
            .flat_map(Template::columns)
        {
            if !columns.contains(name) {
                columns.push(name.clone());
            }
        }
        if let Some(Partition::Column(name)) = &self.partition {
            columns.push(name.clone());
        }
        if let Some(missing) = columns
            .iter()
            .find(|c| table.arrow.field_with_name(c).is_err())
        {
            return Err(Error::input(format!(
                "table {}.{} has no column {missing}",
                table.schema, table.name
            )));
        }
        // A plan without columns would mean "all": ask for `_op`, which every batch has.
        if columns.is_empty() {
            columns.push("_op".to_owned());
        }
        Ok(Plan::columns(columns))
    }

    fn process(&mut self, batch: RecordBatch, ctx: &Context<'_>) -> Result<Output> {
        let rows = batch.num_rows();
        let schema = batch.schema();
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        if let Some(topic) = &self.topic {
            let topics = topic.render(&batch, ctx.table)?;
            fields.push(Arc::new(Field::new("_topic", DataType::Utf8, false)));
            columns.push(Arc::new(StringArray::from(topics)));
        }
        if let Some(key) = &self.key {
            let keys = key.render(&batch, ctx.table)?;
            fields.push(Arc::new(Field::new("_key", DataType::Binary, false)));
            columns.push(Arc::new(
                keys.iter()
                    .map(|k| Some(k.as_bytes()))
                    .collect::<BinaryArray>(),
            ));
        }
        match &self.partition {
            Some(Partition::Fixed(partition)) => {
                fields.push(Arc::new(Field::new("_partition", DataType::Int32, false)));
                columns.push(Arc::new(Int32Array::from(vec![*partition; rows])));
            }
            Some(Partition::Column(name)) => {
                let array = ctx.column(&batch, name)?;
                let partitions: Int32Array = match array.data_type() {
                    DataType::Int16 => array
                        .as_primitive::<Int16Type>()
                        .iter()
                        .map(|v| v.map(i32::from))
                        .collect(),
                    DataType::Int32 => array.as_primitive::<Int32Type>().clone(),
                    DataType::Int64 => array
                        .as_primitive::<Int64Type>()
                        .iter()
                        .map(|v| v.and_then(|v| i32::try_from(v).ok()))
                        .collect(),
                    other => {
                        return Err(Error::input(format!(
                            "partition column {name} is {other}; it must be an integer"
                        )));
                    }
                };
                fields.push(Arc::new(Field::new("_partition", DataType::Int32, true)));
                columns.push(Arc::new(partitions));
            }
            None => {}
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        Ok(Output::Replace(RecordBatch::try_new(schema, columns)?))
    }
}

weir_guest::export_batch_plugin!(Route);

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use weir_guest::batch::arrow::array::UInt8Array;
    use weir_guest::batch::testing::Harness;

    use super::*;

    fn orders() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("_op", DataType::UInt8, false),
            Field::new("id", DataType::Int64, false),
            Field::new("region", DataType::Utf8, true),
            Field::new("shard", DataType::Int32, true),
        ])
        .with_metadata(HashMap::from([
            ("weir.schema".to_owned(), "public".to_owned()),
            ("weir.table".to_owned(), "orders".to_owned()),
        ]));
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(UInt8Array::from(vec![b'c', b'u'])),
                Arc::new(weir_guest::batch::arrow::array::Int64Array::from(vec![
                    1, 2,
                ])),
                Arc::new(StringArray::from(vec![Some("eu"), None])),
                Arc::new(Int32Array::from(vec![Some(3), None])),
            ],
        )
        .expect("valid")
    }

    #[test]
    fn templates_parse_with_escapes() {
        assert_eq!(
            Template::parse("{schema}.{{x}}.{id}").expect("parses").0,
            [
                Piece::Schema,
                Piece::Text(".{x}.".into()),
                Piece::Column("id".into())
            ]
        );
        assert!(Template::parse("a}b").is_err());
        assert!(Template::parse("{}").is_err());
    }

    #[test]
    fn routing_columns_are_added() {
        let mut harness = Harness::<Route>::new(
            r#"{"topic": "{table}.{region}", "key": "{id}", "partition": "shard"}"#,
        )
        .expect("init");
        let out = harness.run(&orders()).expect("runs");
        let topics: Vec<_> = out
            .column_by_name("_topic")
            .expect("topic")
            .as_string::<i32>()
            .iter()
            .collect();
        assert_eq!(topics, [Some("orders.eu"), Some("orders.")]);
        let keys: Vec<_> = out
            .column_by_name("_key")
            .expect("key")
            .as_binary::<i32>()
            .iter()
            .collect();
        assert_eq!(keys, [Some(&b"1"[..]), Some(&b"2"[..])]);
        let partitions = out
            .column_by_name("_partition")
            .expect("partition")
            .as_primitive::<Int32Type>();
        assert_eq!(partitions.iter().collect::<Vec<_>>(), [Some(3), None]);
    }

    #[test]
    fn missing_columns_and_empty_configs_are_errors() {
        assert!(Harness::<Route>::new("{}").is_err());
        let mut harness = Harness::<Route>::new(r#"{"topic": "{country}"}"#).expect("init");
        assert!(
            harness
                .run(&orders())
                .expect_err("missing")
                .message
                .contains("country")
        );
    }
}
