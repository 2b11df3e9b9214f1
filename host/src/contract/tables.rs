//! Which tables a pipeline reads: `schema.table`, `schema.*`, or `table` (in `public`).

use std::fmt;
use std::str::FromStr;

/// One entry of a pipeline's `tables` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TableSelector {
    /// One table.
    #[allow(missing_docs)]
    Table { schema: String, name: String },
    /// Every table of a schema, including tables created later.
    Schema(String),
}

/// A `tables` entry that is not `schema.table`, `schema.*` or `table`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid table {0:?}: expected schema.table, schema.* or table")]
pub struct TableSelectorError(pub String);

impl FromStr for TableSelector {
    type Err = TableSelectorError;

    /// Parses `schema.table`, `schema.*` or `table`. Names are taken literally (as if
    /// double-quoted in SQL); `"a.b".c` quoting is not needed because names with dots
    /// are written with the schema explicitly.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || TableSelectorError(text.to_owned());
        let (schema, name) = match text.split_once('.') {
            Some((schema, name)) => (schema, name),
            None => ("public", text),
        };
        if schema.is_empty() || name.is_empty() || schema == "*" {
            return Err(invalid());
        }
        Ok(if name == "*" {
            TableSelector::Schema(schema.to_owned())
        } else {
            TableSelector::Table {
                schema: schema.to_owned(),
                name: name.to_owned(),
            }
        })
    }
}

impl TableSelector {
    /// Whether the selector takes table `schema.name`.
    pub fn matches(&self, schema: &str, name: &str) -> bool {
        match self {
            TableSelector::Table { schema: s, name: n } => s == schema && n == name,
            TableSelector::Schema(s) => s == schema,
        }
    }
}

impl fmt::Display for TableSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableSelector::Table { schema, name } => write!(f, "{schema}.{name}"),
            TableSelector::Schema(schema) => write!(f, "{schema}.*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            "public.orders".parse(),
            Ok(TableSelector::Table {
                schema: "public".into(),
                name: "orders".into()
            })
        );
        assert_eq!("sales.*".parse(), Ok(TableSelector::Schema("sales".into())));
        assert_eq!(
            "orders".parse(),
            Ok(TableSelector::Table {
                schema: "public".into(),
                name: "orders".into()
            })
        );
        assert_eq!("*".parse(), Ok(TableSelector::Schema("public".into())));
        for bad in ["", ".x", "x.", "*.x"] {
            assert!(bad.parse::<TableSelector>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "sales.*"
                .parse::<TableSelector>()
                .expect("valid")
                .to_string(),
            "sales.*"
        );
    }
}
