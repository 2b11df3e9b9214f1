//! `op-filter`: keeps only the change kinds you name.
//!
//! Debezium users know this as `skipped.operations`; managed services call it "DML
//! types to synchronize". Configure exactly one of:
//!
//! ```yaml
//! config: { skip: [d] }          # everything but deletes
//! config: { keep: [c, u] }       # inserts and updates only
//! ```
//!
//! Kinds are `r` (snapshot read), `c` (insert), `u` (update), `d` (delete), or their
//! names `read`, `insert`, `update`, `delete`.

use serde::Deserialize;

/// The stage's `config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    keep: Option<Vec<String>>,
    skip: Option<Vec<String>>,
}

/// Which `_op` codes pass, indexed by the ASCII code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpSet([bool; 128]);

impl OpSet {
    /// Parses the stage's JSON config.
    pub fn from_config(json: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(json).map_err(|e| format!("config: {e}"))?;
        let (names, keep) = match (config.keep, config.skip) {
            (Some(names), None) => (names, true),
            (None, Some(names)) => (names, false),
            _ => return Err("config: set exactly one of `keep` or `skip`".to_owned()),
        };
        let mut set = OpSet([!keep; 128]);
        for name in &names {
            set.0[usize::from(op_code(name)?)] = keep;
        }
        Ok(set)
    }

    /// Whether a change with this `_op` code passes. Unknown codes pass: a filter
    /// written for today's kinds must not silently drop tomorrow's.
    pub fn passes(&self, op: u8) -> bool {
        !is_known(op) || self.0[usize::from(op)]
    }
}

fn is_known(op: u8) -> bool {
    matches!(op, b'r' | b'c' | b'u' | b'd')
}

fn op_code(name: &str) -> Result<u8, String> {
    Ok(match name {
        "r" | "read" => b'r',
        "c" | "insert" => b'c',
        "u" | "update" => b'u',
        "d" | "delete" => b'd',
        other => {
            return Err(format!(
                "config: unknown change kind `{other}` (expected r, c, u, d, read, insert, update or delete)"
            ));
        }
    })
}

#[cfg(target_family = "wasm")]
mod component {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;
    use weir_guest::row::exports::weir::plugin::lifecycle;
    use weir_guest::row::exports::weir::plugin::row::{
        self, PluginError, Row, RowOutput, TableId, TableInfo, Value,
    };

    #[derive(Default)]
    struct State {
        ops: Option<OpSet>,
        /// Position of `_op` in each prepared table's rows.
        op_column: HashMap<TableId, usize>,
    }

    thread_local! {
        static STATE: RefCell<State> = RefCell::new(State::default());
    }

    struct OpFilter;

    impl lifecycle::Guest for OpFilter {
        fn init(config: String) -> Result<(), PluginError> {
            let ops = OpSet::from_config(&config).map_err(PluginError::InvalidConfig)?;
            STATE.with_borrow_mut(|state| state.ops = Some(ops));
            Ok(())
        }
    }

    impl row::Guest for OpFilter {
        fn prepare(table: TableId, info: TableInfo) -> Result<bool, PluginError> {
            let position = info
                .columns
                .iter()
                .position(|column| column.name == "_op")
                .ok_or_else(|| {
                    PluginError::InvalidInput(format!(
                        "table {}.{} has no `_op` column",
                        info.schema, info.name
                    ))
                })?;
            STATE.with_borrow_mut(|state| state.op_column.insert(table, position));
            Ok(true)
        }

        fn process(table: TableId, rows: Vec<Row>) -> Result<RowOutput, PluginError> {
            STATE.with_borrow(|state| {
                let ops = state
                    .ops
                    .as_ref()
                    .ok_or_else(|| PluginError::Failed("process called before init".into()))?;
                let column = *state.op_column.get(&table).ok_or_else(|| {
                    PluginError::Failed(format!("table {table} was not prepared"))
                })?;
                let selection: Vec<bool> = rows
                    .iter()
                    .map(|row| match row.get(column) {
                        Some(Value::Uint(op)) => {
                            u8::try_from(*op).map_or(true, |op| ops.passes(op))
                        }
                        Some(Value::Text(op)) => op.bytes().next().is_none_or(|op| ops.passes(op)),
                        _ => true,
                    })
                    .collect();
                Ok(if selection.iter().all(|keep| *keep) {
                    RowOutput::Unchanged
                } else {
                    RowOutput::Selection(selection)
                })
            })
        }
    }

    weir_guest::row::export_row_plugin!(OpFilter);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_deletes_keeps_everything_else() {
        let set = OpSet::from_config(r#"{"skip": ["d"]}"#).expect("valid config");
        assert!(set.passes(b'r') && set.passes(b'c') && set.passes(b'u'));
        assert!(!set.passes(b'd'));
    }

    #[test]
    fn keep_names_only_those() {
        let set = OpSet::from_config(r#"{"keep": ["insert", "u"]}"#).expect("valid config");
        assert!(set.passes(b'c') && set.passes(b'u'));
        assert!(!set.passes(b'r') && !set.passes(b'd'));
    }

    #[test]
    fn unknown_codes_pass() {
        let set = OpSet::from_config(r#"{"keep": []}"#).expect("valid config");
        assert!(set.passes(b't'));
        assert!(!set.passes(b'c'));
    }

    #[test]
    fn bad_configs_are_named() {
        let both = OpSet::from_config(r#"{"keep": ["c"], "skip": ["d"]}"#).unwrap_err();
        assert!(both.contains("exactly one"), "{both}");
        let unknown = OpSet::from_config(r#"{"skip": ["truncate"]}"#).unwrap_err();
        assert!(unknown.contains("`truncate`"), "{unknown}");
        let typo = OpSet::from_config(r#"{"skipp": ["d"]}"#).unwrap_err();
        assert!(typo.contains("skipp"), "{typo}");
    }
}
