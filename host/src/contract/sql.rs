//! Quoting names and values into SQL: what the control plane sends, and the statements
//! messages carry (a TRUNCATE's).

/// `"name"` with embedded quotes doubled: a safe SQL identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`: a table's qualified name as a safe SQL identifier.
pub fn quote_qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_identifier(schema), quote_identifier(name))
}

/// `'text'` with embedded quotes doubled: a safe SQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The text of column `quoted` as pgoutput sends it, null for a null value: the
/// type's output function, which `format` calls (a `::text` cast is not always that:
/// it trims `char(n)`'s padding and adds `inet`'s netmask). `num_nulls`, not `IS
/// NULL`, which is true of a composite whose fields are all null, yet that is a value
/// (`(,)`), and pgoutput sends it.
pub fn output_text(quoted: &str) -> String {
    format!("CASE WHEN num_nulls({quoted}) = 1 THEN NULL ELSE format('%s', {quoted}) END")
}

/// `TRUNCATE TABLE "schema"."table"`: the statement messages carry for a TRUNCATE,
/// which pgoutput sends without one.
pub fn truncate_statement(schema: &str, table: &str) -> String {
    format!("TRUNCATE TABLE {}", quote_qualified(schema, table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_identifier("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_qualified("a.b", "we\"ird"), "\"a.b\".\"we\"\"ird\"");
    }
}
