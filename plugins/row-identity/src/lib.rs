//! A test fixture, not a shipped plugin: every row goes out as it came in, through the
//! row world's conversion both ways. weir's tests compare the result with the input.

use weir_guest::row::Row;

/// The identity map.
#[weir_guest::map]
fn same(row: Row) -> Row {
    row
}

#[cfg(test)]
mod tests {
    use weir_guest::row::{Row, Value};

    #[test]
    fn rows_pass_unchanged() {
        let row = Row::from_pairs([("id", Value::Int(1)), ("name", Value::Text("a".into()))]);
        assert_eq!(super::same(row.clone()), row);
    }
}
