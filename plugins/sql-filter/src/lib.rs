//! `sql-filter`: keeps the rows a SQL WHERE expression selects — the "filter
//! conditions" of managed replication services.
//!
//! ```yaml
//! plugins:
//!   - name: paid-only
//!     wasm: sql-filter.wasm
//!     tables: [public.orders]
//!     config: { where: "status = 'paid' AND total > 100 AND _op <> 'd'" }
//! ```
//!
//! The expression may use user columns and weir's metadata columns (`_op` compares
//! with `'c'`, `'u'`, `'d'`, `'r'`), literals, `= <> != < <= > >=`, `AND`, `OR`,
//! `NOT`, `IS [NOT] NULL`, `IS TRUE/FALSE`, `[NOT] IN (…)`, `[NOT] BETWEEN … AND …`,
//! `[NOT] LIKE` and `ILIKE`. It is parsed with sqlparser's PostgreSQL dialect and
//! evaluated column-wise with Arrow kernels; only the referenced columns cross into the
//! plugin, and weir applies the resulting selection to the full batch. As in SQL, a
//! row passes only where the expression is TRUE (not NULL).

pub mod eval;
pub mod parse;

use std::sync::Arc;

use serde::Deserialize;
use weir_guest::batch::arrow::array::BooleanArray;
use weir_guest::batch::arrow::datatypes::{Schema, SchemaRef};
use weir_guest::batch::{BatchPlugin, Context, Output, Plan, RecordBatch, Table};

pub use parse::Predicate;

/// The stage's `config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The WHERE expression.
    #[serde(rename = "where")]
    pub condition: String,
}

/// The plugin: a parsed predicate, bound to each table's types when prepared.
#[derive(Debug)]
pub struct SqlFilter {
    predicate: Predicate,
    /// The compiled predicate per prepared table (by its schema).
    tables: Vec<(SchemaRef, eval::Compiled)>,
}

impl SqlFilter {
    /// The predicate of a `where` expression.
    pub fn new(condition: &str) -> Result<Self, String> {
        Ok(Self {
            predicate: Predicate::parse(condition)?,
            tables: Vec::new(),
        })
    }

    /// The predicate bound to a table's schema.
    pub fn compile(&self, schema: &Schema) -> Result<eval::Compiled, String> {
        eval::compile(&self.predicate, schema)
    }

    /// The rows of `batch` that pass: TRUE per row that passes, FALSE or NULL
    /// otherwise. Compiles for the batch's schema first; a pipeline compiles once per
    /// table instead.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, String> {
        eval::evaluate(&self.compile(batch.schema_ref())?, batch)
    }
}

impl BatchPlugin for SqlFilter {
    type Config = Config;

    fn init(config: Config) -> weir_guest::Result<Self> {
        SqlFilter::new(&config.condition).map_err(weir_guest::Error::config)
    }

    fn prepare(&mut self, table: &Table) -> weir_guest::Result<Plan> {
        let compiled = self.compile(&table.arrow).map_err(|why| {
            weir_guest::Error::input(format!(
                "table {}.{}: {why} (in the `where` expression)",
                table.schema, table.name
            ))
        })?;
        self.tables.push((Arc::clone(&table.arrow), compiled));
        Ok(Plan::columns(self.predicate.columns()))
    }

    fn process(&mut self, batch: RecordBatch, ctx: &Context<'_>) -> weir_guest::Result<Output> {
        let compiled = self
            .tables
            .iter()
            .rev()
            .find(|(schema, _)| Arc::ptr_eq(schema, &ctx.table.arrow))
            .map(|(_, compiled)| compiled)
            .ok_or_else(|| weir_guest::Error::failed("table not prepared"))?;
        let keep = eval::evaluate(compiled, &batch).map_err(weir_guest::Error::input)?;
        Ok(if keep.true_count() == batch.num_rows() {
            Output::Unchanged
        } else {
            Output::Keep(keep)
        })
    }
}

weir_guest::export_batch_plugin!(SqlFilter);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use weir_guest::batch::arrow::array::{Decimal128Array, StringArray, UInt8Array};
    use weir_guest::batch::arrow::datatypes::{DataType, Field, Schema};
    use weir_guest::batch::testing::Harness;

    use super::*;

    fn orders() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("_op", DataType::UInt8, false),
            Field::new("id", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, true),
            Field::new("total", DataType::Decimal128(10, 2), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt8Array::from(vec![b'c', b'c', b'u', b'd', b'c'])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e"])),
                Arc::new(StringArray::from(vec![
                    Some("paid"),
                    Some("paid"),
                    Some("new"),
                    Some("paid"),
                    None,
                ])),
                Arc::new(
                    Decimal128Array::from(vec![
                        Some(15_000),
                        Some(9_999),
                        Some(50_000),
                        Some(20_000),
                        Some(30_000),
                    ])
                    .with_precision_and_scale(10, 2)
                    .expect("valid"),
                ),
            ],
        )
        .expect("valid")
    }

    fn ids(batch: &RecordBatch) -> Vec<String> {
        let column = batch.column_by_name("id").expect("id");
        let strings = column
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("strings");
        strings
            .iter()
            .map(|s| s.unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn filters_through_the_plugin_boundary() {
        let mut harness = Harness::<SqlFilter>::new(
            r#"{"where": "status = 'paid' AND total > 100 AND _op <> 'd'"}"#,
        )
        .expect("init");
        let out = harness.run(&orders()).expect("runs");
        assert_eq!(ids(&out), ["a"]);
    }

    #[test]
    fn null_is_not_true() {
        let mut harness =
            Harness::<SqlFilter>::new(r#"{"where": "status <> 'new'"}"#).expect("init");
        // Row e has a NULL status: `NULL <> 'new'` is NULL, so it is dropped.
        assert_eq!(ids(&harness.run(&orders()).expect("runs")), ["a", "b", "d"]);
        let mut harness = Harness::<SqlFilter>::new(
            r#"{"where": "status IS NULL OR total BETWEEN 99.99 AND 150"}"#,
        )
        .expect("init");
        assert_eq!(ids(&harness.run(&orders()).expect("runs")), ["a", "b", "e"]);
    }

    #[test]
    fn in_lists_and_like() {
        let mut harness = Harness::<SqlFilter>::new(
            r#"{"where": "id IN ('a', 'c') OR status LIKE 'pa%' AND _op = 'd'"}"#,
        )
        .expect("init");
        assert_eq!(ids(&harness.run(&orders()).expect("runs")), ["a", "c", "d"]);
    }

    #[test]
    fn a_missing_column_is_named() {
        let mut harness = Harness::<SqlFilter>::new(r#"{"where": "region = 'eu'"}"#).expect("init");
        let error = harness.run(&orders()).expect_err("no such column");
        assert!(error.message.contains("region"), "{error}");
    }

    #[test]
    fn a_bad_expression_is_a_config_error() {
        let error = Harness::<SqlFilter>::new(r#"{"where": "status = "}"#)
            .err()
            .expect("rejected");
        assert_eq!(error.kind, weir_guest::ErrorKind::InvalidConfig);
        let error = Harness::<SqlFilter>::new(r#"{"wher": "x = 1"}"#)
            .err()
            .expect("rejected");
        assert!(error.message.contains("wher"), "{error}");
    }
}
