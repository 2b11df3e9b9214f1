//! A bench fixture, not a shipped plugin: lowercases the text columns named in its
//! config, reading only those. It is the workload `plugin_call`'s per-language
//! benchmark runs in every language (`c-lowercase` in C, the `weir plugin new`
//! templates in Python, JavaScript, Go and Zig), here in Rust.

use weir_guest::Result;
use weir_guest::row::{Output, Plan, Row, RowPlugin, Table, Value};

/// `{ columns: [email] }`
#[derive(serde::Deserialize)]
pub struct Config {
    columns: Vec<String>,
}

/// The plugin: the configured column names.
pub struct Lowercase {
    columns: Vec<String>,
}

impl RowPlugin for Lowercase {
    type Config = Config;

    fn init(config: Config) -> Result<Self> {
        Ok(Self {
            columns: config.columns,
        })
    }

    fn prepare(&mut self, table: &Table) -> Result<Plan> {
        let wanted: Vec<&String> = table
            .columns
            .iter()
            .map(|(name, _)| name)
            .filter(|name| {
                let plain = name.strip_prefix("_before.").unwrap_or(name);
                self.columns.iter().any(|c| c == plain)
            })
            .collect();
        Ok(if wanted.is_empty() {
            Plan::skip()
        } else {
            Plan::columns(wanted.into_iter().cloned())
        })
    }

    fn process(&mut self, _table: &Table, rows: Vec<Row>) -> Result<Output> {
        Ok(Output::Replace(rows.into_iter().map(lowercase).collect()))
    }
}

fn lowercase(mut row: Row) -> Row {
    let names: Vec<String> = row.columns().to_vec();
    for name in names {
        if let Some(text) = row.text(&name) {
            let lower = text.to_lowercase();
            row.set(&name, Value::Text(lower));
        }
    }
    row
}

weir_guest::export_row_plugin!(Lowercase);

#[cfg(test)]
mod tests {
    use weir_guest::row::{Row, Value};

    #[test]
    fn lowercases_text() {
        let row = Row::from_pairs([("email", Value::Text("A@B.ORG".into()))]);
        assert_eq!(super::lowercase(row).text("email"), Some("a@b.org"));
    }
}
