//! Row-level plugins: changes as rows of typed values.
//!
//! The shortest plugin is one function:
//!
//! ```
//! use weir_guest::row::{Row, Value};
//!
//! #[derive(serde::Deserialize)]
//! struct Config { min: i64 }
//!
//! #[weir_guest::filter]
//! fn big_enough(row: &Row, config: &Config) -> bool {
//!     row.int("amount").is_some_and(|amount| amount >= config.min)
//! }
//!
//! // The function stays callable, so it is tested natively like any other:
//! let row = Row::from_pairs([("amount", Value::Int(120))]);
//! assert!(big_enough(&row, &Config { min: 100 }));
//! ```
//!
//! `#[weir_guest::map]` rewrites rows instead (`fn f(row: Row) -> Row`, or
//! `-> Option<Row>` to drop some). For per-table setup, reading only some columns or
//! setting routing columns, implement [`RowPlugin`] and export it with
//! [`export_row_plugin!`](crate::export_row_plugin).
//!
//! Rows cross the boundary value by value, which costs about a microsecond a row
//! (ENVIRONMENT.md: ≈ 2 M rows/s); the batch level is many times faster.

use std::sync::Arc;

pub use crate::wit::row::exports::weir::plugin::row::Value;
use crate::wit::row::exports::weir::plugin::row::{
    PluginError, RowOutput, RowPlan, TableId, TableInfo,
};
use crate::{Error, Result};

/// A table as announced to the plugin.
#[derive(Debug, Clone)]
pub struct Table {
    /// PostgreSQL schema.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Every column, metadata included: `(name, PostgreSQL type)`.
    pub columns: Vec<(String, String)>,
}

/// What the plugin asks of a table.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Columns to read, by name; empty: all.
    pub columns: Vec<String>,
    /// Routing columns the plugin appends to replaced rows (`_topic`, `_key`,
    /// `_partition`).
    pub routing: Vec<String>,
    /// Whether the plugin wants this table at all.
    pub wants_table: bool,
}

impl Plan {
    /// Every column, no routing.
    pub fn all() -> Self {
        Self {
            columns: Vec::new(),
            routing: Vec::new(),
            wants_table: true,
        }
    }

    /// Only these columns.
    pub fn columns<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: columns.into_iter().map(Into::into).collect(),
            ..Self::all()
        }
    }

    /// Nothing: the host skips this table.
    pub fn skip() -> Self {
        Self {
            wants_table: false,
            ..Self::all()
        }
    }
}

/// One row: values by column name.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// A row of `values` under `columns` (same length).
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Self { columns, values }
    }

    /// A row from `(name, value)` pairs: handy in tests.
    pub fn from_pairs<S: Into<String>>(pairs: impl IntoIterator<Item = (S, Value)>) -> Self {
        let (columns, values): (Vec<String>, Vec<Value>) = pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value))
            .unzip();
        Self::new(columns.into(), values)
    }

    /// The column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The value of `column`; `None` when the row has no such column.
    pub fn get(&self, column: &str) -> Option<&Value> {
        let index = self.columns.iter().position(|name| name == column)?;
        self.values.get(index)
    }

    /// Replaces the value of `column`; false when the row has no such column.
    pub fn set(&mut self, column: &str, value: Value) -> bool {
        match self.columns.iter().position(|name| name == column) {
            Some(index) => {
                self.values[index] = value;
                true
            }
            None => false,
        }
    }

    /// A text value (also `numeric`, `uuid`, `json`… in PostgreSQL's text form).
    pub fn text(&self, column: &str) -> Option<&str> {
        match self.get(column)? {
            Value::Text(text) => Some(text),
            _ => None,
        }
    }

    /// An integer value (signed or unsigned that fits).
    pub fn int(&self, column: &str) -> Option<i64> {
        match self.get(column)? {
            Value::Int(value) => Some(*value),
            Value::Uint(value) => i64::try_from(*value).ok(),
            _ => None,
        }
    }

    /// A number: floats, integers, and numeric text such as `129.90`.
    pub fn float(&self, column: &str) -> Option<f64> {
        match self.get(column)? {
            Value::Float(value) => Some(*value),
            #[allow(clippy::cast_precision_loss)]
            Value::Int(value) => Some(*value as f64),
            #[allow(clippy::cast_precision_loss)]
            Value::Uint(value) => Some(*value as f64),
            Value::Text(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// A boolean value.
    pub fn bool(&self, column: &str) -> Option<bool> {
        match self.get(column)? {
            Value::Boolean(value) => Some(*value),
            _ => None,
        }
    }

    /// Whether `column` is null (or absent).
    pub fn is_null(&self, column: &str) -> bool {
        matches!(self.get(column), None | Some(Value::Null))
    }

    /// The change kind: `b'r'`, `b'c'`, `b'u'` or `b'd'`.
    pub fn op(&self) -> Option<u8> {
        match self.get("_op")? {
            Value::Uint(op) => u8::try_from(*op).ok(),
            _ => None,
        }
    }

    fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// A plugin's answer for one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Every row passes unchanged.
    Unchanged,
    /// One flag per row: true keeps it.
    Keep(Vec<bool>),
    /// New rows replacing the input: the plan's columns, then its routing columns.
    Replace(Vec<Row>),
}

/// A row-level plugin with full control.
pub trait RowPlugin: Sized + 'static {
    /// The stage's `config`, deserialized from JSON.
    type Config: serde::de::DeserializeOwned;

    /// Builds the plugin from its config, once per instance.
    fn init(config: Self::Config) -> Result<Self>;

    /// Decides what to read of a table (default: everything).
    fn prepare(&mut self, table: &Table) -> Result<Plan> {
        let _ = table;
        Ok(Plan::all())
    }

    /// Processes rows of a prepared table.
    fn process(&mut self, table: &Table, rows: Vec<Row>) -> Result<Output>;
}

pub use crate::NoConfig;

/// What `#[weir_guest::filter]` implements.
pub trait RowFilter: 'static {
    /// The stage's `config`.
    type Config: serde::de::DeserializeOwned + 'static;
    /// Whether `row` passes.
    fn keep(row: &Row, config: &Self::Config) -> bool;
}

/// What `#[weir_guest::map]` implements.
pub trait RowMap: 'static {
    /// The stage's `config`.
    type Config: serde::de::DeserializeOwned + 'static;
    /// The rewritten row; `None` drops it.
    fn map(row: Row, config: &Self::Config) -> Option<Row>;
}

/// A [`RowFilter`] as a [`RowPlugin`].
pub struct FilterPlugin<F: RowFilter> {
    config: F::Config,
}

impl<F: RowFilter> RowPlugin for FilterPlugin<F> {
    type Config = F::Config;

    fn init(config: Self::Config) -> Result<Self> {
        Ok(Self { config })
    }

    fn process(&mut self, _table: &Table, rows: Vec<Row>) -> Result<Output> {
        let keep: Vec<bool> = rows.iter().map(|row| F::keep(row, &self.config)).collect();
        Ok(if keep.iter().all(|k| *k) {
            Output::Unchanged
        } else {
            Output::Keep(keep)
        })
    }
}

/// A [`RowMap`] as a [`RowPlugin`].
pub struct MapPlugin<M: RowMap> {
    config: M::Config,
}

impl<M: RowMap> RowPlugin for MapPlugin<M> {
    type Config = M::Config;

    fn init(config: Self::Config) -> Result<Self> {
        Ok(Self { config })
    }

    fn process(&mut self, _table: &Table, rows: Vec<Row>) -> Result<Output> {
        Ok(Output::Replace(
            rows.into_iter()
                .filter_map(|row| M::map(row, &self.config))
                .collect(),
        ))
    }
}

/// The glue between the WIT exports and a [`RowPlugin`]; public for the export
/// macros and for tests that want to drive a plugin as the host does.
pub struct Runtime<P: RowPlugin> {
    plugin: P,
    tables: std::collections::HashMap<TableId, (Table, Arc<[String]>)>,
}

impl<P: RowPlugin> Runtime<P> {
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
            tables: std::collections::HashMap::new(),
        })
    }

    /// `prepare`.
    pub fn prepare(&mut self, id: TableId, info: TableInfo) -> Result<RowPlan> {
        let table = Table {
            schema: info.schema,
            name: info.name,
            columns: info
                .columns
                .into_iter()
                .map(|column| (column.name, column.pg_type))
                .collect(),
        };
        let plan = self.plugin.prepare(&table)?;
        let mut read: Vec<String> = if plan.columns.is_empty() {
            table.columns.iter().map(|(name, _)| name.clone()).collect()
        } else {
            table
                .columns
                .iter()
                .filter(|(name, _)| plan.columns.contains(name))
                .map(|(name, _)| name.clone())
                .collect()
        };
        read.extend(plan.routing.iter().cloned());
        self.tables.insert(id, (table, read.into()));
        Ok(RowPlan {
            columns: plan.columns,
            routing: plan.routing,
            wants_table: plan.wants_table,
        })
    }

    /// `process`.
    pub fn process(&mut self, id: TableId, rows: Vec<Vec<Value>>) -> Result<RowOutput> {
        let (table, columns) = self
            .tables
            .get(&id)
            .ok_or_else(|| Error::failed(format!("table {id} was not prepared")))?;
        let rows = rows
            .into_iter()
            .map(|values| Row::new(Arc::clone(columns), values))
            .collect();
        Ok(match self.plugin.process(table, rows)? {
            Output::Unchanged => RowOutput::Unchanged,
            Output::Keep(keep) => RowOutput::Selection(keep),
            Output::Replace(rows) => {
                RowOutput::Replaced(rows.into_iter().map(Row::into_values).collect())
            }
        })
    }
}

#[doc(hidden)]
pub mod __private {
    use super::*;

    pub fn init<P: RowPlugin>(config: &str) -> Result<(), PluginError> {
        let runtime = Runtime::<P>::init(config)?;
        crate::__private::set_state(runtime);
        Ok(())
    }

    pub fn prepare<P: RowPlugin>(id: TableId, info: TableInfo) -> Result<RowPlan, PluginError> {
        Ok(crate::__private::with_state(|runtime: &mut Runtime<P>| {
            runtime.prepare(id, info)
        })?)
    }

    pub fn process<P: RowPlugin>(
        id: TableId,
        rows: Vec<Vec<Value>>,
    ) -> Result<RowOutput, PluginError> {
        Ok(crate::__private::with_state(|runtime: &mut Runtime<P>| {
            runtime.process(id, rows)
        })?)
    }
}

/// Exports a [`RowPlugin`] as the component's `row-plugin` world. Expands to nothing
/// when not compiling for WebAssembly, so the crate still builds and tests natively.
#[macro_export]
macro_rules! export_row_plugin {
    ($plugin:ty) => {
        #[cfg(target_family = "wasm")]
        const _: () = {
            use $crate::wit::row::exports::weir::plugin::row as wit_row;

            struct WeirRowExport;

            impl wit_row::Guest for WeirRowExport {
                fn init(
                    config: ::std::string::String,
                ) -> ::core::result::Result<(), wit_row::PluginError> {
                    $crate::row::__private::init::<$plugin>(&config)
                }

                fn prepare(
                    table: wit_row::TableId,
                    info: wit_row::TableInfo,
                ) -> ::core::result::Result<wit_row::RowPlan, wit_row::PluginError> {
                    $crate::row::__private::prepare::<$plugin>(table, info)
                }

                fn process(
                    table: wit_row::TableId,
                    rows: ::std::vec::Vec<wit_row::Row>,
                ) -> ::core::result::Result<wit_row::RowOutput, wit_row::PluginError> {
                    $crate::row::__private::process::<$plugin>(table, rows)
                }
            }

    $crate::wit::row::export_row_world!(WeirRowExport with_types_in $crate::wit::row);
        };
    };
}

/// Exports a [`RowFilter`]; what `#[weir_guest::filter]` expands to.
#[macro_export]
macro_rules! export_row_filter {
    ($filter:ty) => {
        $crate::export_row_plugin!($crate::row::FilterPlugin<$filter>);
    };
}

/// Exports a [`RowMap`]; what `#[weir_guest::map]` expands to.
#[macro_export]
macro_rules! export_row_map {
    ($map:ty) => {
        $crate::export_row_plugin!($crate::row::MapPlugin<$map>);
    };
}
