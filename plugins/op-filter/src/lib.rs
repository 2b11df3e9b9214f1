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
use weir_guest::row::Row;

/// The stage's `config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    keep: Option<Vec<String>>,
    skip: Option<Vec<String>>,
}

/// Which `_op` codes pass, indexed by the ASCII code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Config")]
pub struct OpSet([bool; 128]);

impl TryFrom<Config> for OpSet {
    type Error = String;

    fn try_from(config: Config) -> Result<Self, String> {
        Self::from_parts(config)
    }
}

impl OpSet {
    /// Parses the stage's JSON config.
    pub fn from_config(json: &str) -> Result<Self, String> {
        weir_guest::parse_config(json).map_err(|e| e.message)
    }

    fn from_parts(config: Config) -> Result<Self, String> {
        let (names, keep) = match (config.keep, config.skip) {
            (Some(names), None) => (names, true),
            (None, Some(names)) => (names, false),
            _ => return Err("set exactly one of `keep` or `skip`".to_owned()),
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
    matches!(op, b'r' | b'c' | b'u' | b'd' | b't')
}

fn op_code(name: &str) -> Result<u8, String> {
    Ok(match name {
        "r" | "read" => b'r',
        "c" | "insert" => b'c',
        "u" | "update" => b'u',
        "d" | "delete" => b'd',
        "t" | "truncate" => b't',
        other => {
            return Err(format!(
                "unknown change kind `{other}` (expected r, c, u, d, t, read, insert, update, delete or truncate)"
            ));
        }
    })
}

/// Whether a change passes: the whole plugin.
#[weir_guest::filter]
fn keep(row: &Row, ops: &OpSet) -> bool {
    row.op().is_none_or(|op| ops.passes(op))
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
        assert!(set.passes(b'x'));
        assert!(!set.passes(b'c') && !set.passes(b't'));
    }

    #[test]
    fn bad_configs_are_named() {
        let both = OpSet::from_config(r#"{"keep": ["c"], "skip": ["d"]}"#).unwrap_err();
        assert!(both.contains("exactly one"), "{both}");
        let unknown = OpSet::from_config(r#"{"skip": ["upsert"]}"#).unwrap_err();
        assert!(unknown.contains("`upsert`"), "{unknown}");
        let truncates = OpSet::from_config(r#"{"skip": ["truncate"]}"#).expect("valid config");
        assert!(!truncates.passes(b't') && truncates.passes(b'd'));
        let typo = OpSet::from_config(r#"{"skipp": ["d"]}"#).unwrap_err();
        assert!(typo.contains("skipp"), "{typo}");
    }
}

#[cfg(test)]
mod filter_tests {
    use weir_guest::row::{Row, Value};

    use super::*;

    #[test]
    fn the_filter_reads_op_from_the_row() {
        let ops = OpSet::from_config(r#"{"skip": ["d"]}"#).expect("valid config");
        let delete = Row::from_pairs([("_op", Value::Uint(u64::from(b'd')))]);
        let insert = Row::from_pairs([("_op", Value::Uint(u64::from(b'c')))]);
        assert!(!keep(&delete, &ops));
        assert!(keep(&insert, &ops));
    }
}
