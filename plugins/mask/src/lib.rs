//! `mask`: hides sensitive columns before they leave the database's trust zone.
//!
//! ```yaml
//! config: { columns: [email, phone], method: sha256, salt: "${MASK_SALT}" }
//! config: { columns: [card_number], method: redact, keep_last: 4 }
//! config: { columns: [notes], method: "null" }
//! ```
//!
//! - `sha256`: the lowercase hex SHA-256 of `salt` followed by the value: equal values
//!   stay equal (joins and deduplication keep working) but cannot be read back.
//! - `redact`: the value replaced by `***` (or `with`), keeping the last `keep_last`
//!   characters when set.
//! - `null`: the value removed.
//!
//! The old row image (`_before`) is masked the same way: an update's before-image
//! would otherwise leak what the after-image hides. `sha256` and `redact` apply to
//! text and `bytea` columns (a number's hash would change the column's type); `null`
//! to any column. Columns a table lacks are skipped, so one stage can cover many tables.

use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use weir_guest::batch::arrow::array::cast::AsArray;
use weir_guest::batch::arrow::array::{
    Array, ArrayRef, BinaryArray, StringArray, StructArray, new_null_array,
};
use weir_guest::batch::arrow::datatypes::{DataType, Field, Schema};
use weir_guest::batch::{BatchPlugin, Context, Output, Plan, RecordBatch, Table};
use weir_guest::{Error, Result};

/// How values are hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Salted SHA-256, hex.
    Sha256,
    /// A fixed placeholder.
    Redact,
    /// NULL.
    Null,
}

/// The stage's `config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The columns to mask.
    pub columns: Vec<String>,
    /// How.
    pub method: Method,
    /// Prepended to each value before hashing (`sha256`).
    #[serde(default)]
    pub salt: String,
    /// The placeholder (`redact`; default `***`).
    #[serde(default = "default_placeholder")]
    pub with: String,
    /// Characters kept at the end (`redact`).
    #[serde(default)]
    pub keep_last: usize,
}

fn default_placeholder() -> String {
    "***".to_owned()
}

/// The plugin.
#[derive(Debug)]
pub struct Mask {
    config: Config,
}

const BEFORE: &str = "_before";

impl Mask {
    /// The masked form of a text value.
    pub fn text(&self, value: &str) -> String {
        match self.config.method {
            Method::Sha256 => self.hash(value.as_bytes()),
            Method::Redact | Method::Null => {
                let kept: String = {
                    let count = value.chars().count();
                    value
                        .chars()
                        .skip(count.saturating_sub(self.config.keep_last))
                        .collect()
                };
                format!("{}{kept}", self.config.with)
            }
        }
    }

    fn hash(&self, value: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.config.salt.as_bytes());
        hasher.update(value);
        let mut out = String::with_capacity(64);
        for byte in hasher.finalize() {
            out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(byte & 0xF), 16).unwrap_or('0'));
        }
        out
    }

    fn masks(&self, name: &str) -> bool {
        self.config.columns.iter().any(|column| column == name)
    }

    /// The masked column: same length and nulls, type kept for `null` and text.
    fn column(&self, field: &Field, array: &ArrayRef) -> Result<ArrayRef> {
        if self.config.method == Method::Null {
            return Ok(new_null_array(field.data_type(), array.len()));
        }
        Ok(match field.data_type() {
            DataType::Utf8 => {
                let strings = array.as_string::<i32>();
                Arc::new(
                    strings
                        .iter()
                        .map(|v| v.map(|v| self.text(v)))
                        .collect::<StringArray>(),
                )
            }
            DataType::Binary => {
                let bytes = array.as_binary::<i32>();
                let masked: BinaryArray = bytes
                    .iter()
                    .map(|v| {
                        v.map(|v| match self.config.method {
                            Method::Sha256 => self.hash(v).into_bytes(),
                            _ => self.config.with.clone().into_bytes(),
                        })
                    })
                    .collect();
                Arc::new(masked)
            }
            other => {
                return Err(Error::input(format!(
                    "mask: column {} is {other}; sha256 and redact apply to text and bytea \
                     columns, use method null for others",
                    field.name()
                )));
            }
        })
    }
}

impl BatchPlugin for Mask {
    type Config = Config;

    fn init(config: Config) -> Result<Self> {
        if config.columns.is_empty() {
            return Err(Error::config("mask: `columns` is empty"));
        }
        Ok(Self { config })
    }

    fn prepare(&mut self, table: &Table) -> Result<Plan> {
        let mut columns: Vec<String> = table
            .arrow
            .fields()
            .iter()
            .filter(|field| self.masks(field.name()))
            .map(|field| field.name().clone())
            .collect();
        if columns.is_empty() {
            return Ok(Plan::skip());
        }
        if table.arrow.field_with_name(BEFORE).is_ok() {
            columns.push(BEFORE.to_owned());
        }
        Ok(Plan::columns(columns))
    }

    fn process(&mut self, batch: RecordBatch, _ctx: &Context<'_>) -> Result<Output> {
        let schema = batch.schema();
        let mut fields = Vec::with_capacity(schema.fields().len());
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (field, array) in schema.fields().iter().zip(batch.columns()) {
            if field.name() == BEFORE {
                let (field, array) = self.before(field, array)?;
                fields.push(field);
                columns.push(array);
            } else if self.masks(field.name()) {
                let masked = self.column(field, array)?;
                fields.push(Arc::new(field.as_ref().clone().with_nullable(true)));
                columns.push(masked);
            } else {
                fields.push(Arc::clone(field));
                columns.push(Arc::clone(array));
            }
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        Ok(Output::Replace(RecordBatch::try_new(schema, columns)?))
    }
}

impl Mask {
    /// `_before` with its masked children replaced.
    fn before(&self, field: &Arc<Field>, array: &ArrayRef) -> Result<(Arc<Field>, ArrayRef)> {
        let before = array.as_struct();
        let DataType::Struct(children) = field.data_type() else {
            return Ok((Arc::clone(field), Arc::clone(array)));
        };
        let mut child_fields = Vec::with_capacity(children.len());
        let mut child_arrays = Vec::with_capacity(children.len());
        for (child, values) in children.iter().zip(before.columns()) {
            if self.masks(child.name()) {
                child_arrays.push(self.column(child, values)?);
                child_fields.push(Arc::new(child.as_ref().clone().with_nullable(true)));
            } else {
                child_arrays.push(Arc::clone(values));
                child_fields.push(Arc::clone(child));
            }
        }
        let masked = StructArray::try_new(
            child_fields.clone().into(),
            child_arrays,
            before.nulls().cloned(),
        )?;
        let field = Field::new(
            BEFORE,
            DataType::Struct(child_fields.into()),
            field.is_nullable(),
        )
        .with_metadata(field.metadata().clone());
        Ok((Arc::new(field), Arc::new(masked)))
    }
}

weir_guest::export_batch_plugin!(Mask);

#[cfg(test)]
mod tests {
    use weir_guest::batch::arrow::array::{Int32Array, UInt8Array};
    use weir_guest::batch::arrow::buffer::NullBuffer;
    use weir_guest::batch::testing::Harness;

    use super::*;

    fn users() -> RecordBatch {
        let before_fields = vec![
            Field::new("id", DataType::Int32, true),
            Field::new("email", DataType::Utf8, true),
        ];
        let before = StructArray::try_new(
            before_fields.clone().into(),
            vec![
                Arc::new(Int32Array::from(vec![None, Some(2)])),
                Arc::new(StringArray::from(vec![None, Some("old@x.org")])),
            ],
            Some(NullBuffer::from(vec![false, true])),
        )
        .expect("valid");
        let schema = Arc::new(Schema::new(vec![
            Field::new("_op", DataType::UInt8, false),
            Field::new("id", DataType::Int32, false),
            Field::new("email", DataType::Utf8, true),
            Field::new(BEFORE, DataType::Struct(before_fields.into()), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt8Array::from(vec![b'c', b'u'])),
                Arc::new(Int32Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a@x.org"), None])),
                Arc::new(before),
            ],
        )
        .expect("valid")
    }

    fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        array
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    #[test]
    fn sha256_masks_new_and_old_images_and_keeps_nulls() {
        let mut harness =
            Harness::<Mask>::new(r#"{"columns": ["email"], "method": "sha256", "salt": "s"}"#)
                .expect("init");
        let out = harness.run(&users()).expect("runs");
        let email = strings(out.column_by_name("email").expect("email"));
        // sha256("s" + "a@x.org")
        let mask = Mask::init(Config {
            columns: vec!["email".into()],
            method: Method::Sha256,
            salt: "s".into(),
            with: String::new(),
            keep_last: 0,
        })
        .expect("init");
        assert_eq!(email, [Some(mask.text("a@x.org")), None]);
        assert_eq!(email[0].as_deref().map(str::len), Some(64));
        let before = out.column_by_name(BEFORE).expect("before").as_struct();
        assert_eq!(
            strings(before.column(1)),
            [None, Some(mask.text("old@x.org"))]
        );
        assert!(before.is_null(0), "a null old image stays null");
        // Only the planned columns come back: the host restores the rest.
        assert!(out.column_by_name("id").is_none());
    }

    #[test]
    fn redact_keeps_the_last_characters() {
        let mask = Mask::init(Config {
            columns: vec!["card".into()],
            method: Method::Redact,
            salt: String::new(),
            with: "****".into(),
            keep_last: 4,
        })
        .expect("init");
        assert_eq!(mask.text("4111111111111111"), "****1111");
        assert_eq!(mask.text("12"), "****12");
    }

    #[test]
    fn null_works_on_any_type_and_others_do_not() {
        let mut harness =
            Harness::<Mask>::new(r#"{"columns": ["id"], "method": "null"}"#).expect("init");
        let out = harness.run(&users()).expect("runs");
        assert_eq!(out.column_by_name("id").expect("id").null_count(), 2);
        let mut harness =
            Harness::<Mask>::new(r#"{"columns": ["id"], "method": "sha256"}"#).expect("init");
        let error = harness.run(&users()).expect_err("int column");
        assert!(error.message.contains("use method null"), "{error}");
    }

    #[test]
    fn tables_without_the_columns_are_skipped() {
        let mut harness =
            Harness::<Mask>::new(r#"{"columns": ["ssn"], "method": "null"}"#).expect("init");
        let input = users();
        assert_eq!(harness.run(&input).expect("runs"), input);
    }
}
