//! Which tables a pipeline reads: `schema.table`, `schema.*`, a pattern such as
//! `sales.order_*`, or `table` (in `public`).

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
    /// Tables of a schema whose name matches a pattern, `*` standing for any
    /// run of characters (`order_*`), including tables created later.
    #[allow(missing_docs)]
    Pattern { schema: String, pattern: String },
}

/// A `tables` entry that is not `schema.table`, `schema.*` or `table`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid table {0:?}: expected schema.table, schema.*, schema.prefix_* or table")]
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
        if schema.contains('*') {
            return Err(invalid());
        }
        Ok(if name == "*" {
            TableSelector::Schema(schema.to_owned())
        } else if name.contains('*') {
            TableSelector::Pattern {
                schema: schema.to_owned(),
                pattern: name.to_owned(),
            }
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
            TableSelector::Pattern { schema: s, pattern } => s == schema && glob(pattern, name),
        }
    }

    /// Whether the selector names one table (not a schema or a pattern, which
    /// take tables created later too).
    pub fn is_single_table(&self) -> bool {
        matches!(self, TableSelector::Table { .. })
    }
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == name;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl fmt::Display for TableSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableSelector::Table { schema, name } => write!(f, "{schema}.{name}"),
            TableSelector::Schema(schema) => write!(f, "{schema}.*"),
            TableSelector::Pattern { schema, pattern } => write!(f, "{schema}.{pattern}"),
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
        for bad in ["", ".x", "x.", "*.x", "a*.x"] {
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

    #[test]
    fn patterns_match_names_with_any_run_for_a_star() {
        let selector: TableSelector = "sales.order_*".parse().expect("pattern");
        assert_eq!(
            selector,
            TableSelector::Pattern {
                schema: "sales".into(),
                pattern: "order_*".into()
            }
        );
        assert_eq!(selector.to_string(), "sales.order_*");
        assert!(selector.matches("sales", "order_2026"));
        assert!(selector.matches("sales", "order_"));
        assert!(!selector.matches("sales", "orders"));
        assert!(!selector.matches("public", "order_1"));
        for (pattern, name, matches) in [
            ("*_log", "app_log", true),
            ("*_log", "app_log2", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxc", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*", "", true),
        ] {
            assert_eq!(glob(pattern, name), matches, "{pattern} {name}");
        }
    }
}
