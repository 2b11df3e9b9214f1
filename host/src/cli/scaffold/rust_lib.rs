//! `{{name}}`: a weir plugin. As generated, it keeps the rows whose `column` is not
//! null, and drops the others:
//!
//! ```yaml
//! plugins:
//!   - name: {{name}}
//!     wasm: {{name}}.wasm
//!     config: { column: customer_email }
//! ```
//!
//! Change `keep` to your logic; `#[weir_guest::map]` rewrites rows instead.

use serde::Deserialize;
use weir_guest::row::Row;

/// The stage's `config`: unknown keys are refused, so typos fail at startup.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The column that must not be null.
    column: String,
}

/// Whether a row passes.
#[weir_guest::filter]
fn keep(row: &Row, config: &Config) -> bool {
    !row.is_null(&config.column)
}

#[cfg(test)]
mod tests {
    use weir_guest::row::{Row, Value};

    use super::*;

    fn config() -> Config {
        weir_guest::parse_config(r#"{"column": "customer_email"}"#).expect("valid config")
    }

    #[test]
    fn keeps_rows_with_a_value() {
        let row = Row::from_pairs([("id", Value::Int(1)), ("customer_email", Value::Text("a@b.c".into()))]);
        assert!(keep(&row, &config()));
    }

    #[test]
    fn drops_rows_without_one() {
        let row = Row::from_pairs([("id", Value::Int(2)), ("customer_email", Value::Null)]);
        assert!(!keep(&row, &config()));
    }
}
