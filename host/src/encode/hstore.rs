//! `hstore` values as JSON objects: Debezium's default `hstore.handling.mode`
//! (`json`) writes `"a"=>"1", "b"=>NULL` as the string `{"a":"1","b":null}`.
//!
//! PostgreSQL's output form quotes every key and value and escapes `"` and `\`
//! with a backslash; keys keep PostgreSQL's order. Text that does not read as an
//! hstore (it cannot come from the server) is kept as it is, so nothing is lost.

use super::value::string;

/// Appends the JSON object of hstore text `text` to `out`; `false` (with `out` as
/// it was) when `text` is not an hstore's output form.
pub(crate) fn hstore_json(text: &str, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    if write_object(text, out).is_none() {
        out.truncate(start);
        return false;
    }
    true
}

fn write_object(text: &str, out: &mut Vec<u8>) -> Option<()> {
    let mut rest = text.trim_start();
    out.push(b'{');
    let mut first = true;
    while !rest.is_empty() {
        if !first {
            rest = rest.strip_prefix(',')?.trim_start();
        }
        let (key, after) = quoted(rest)?;
        rest = after.trim_start().strip_prefix("=>")?.trim_start();
        if !first {
            out.push(b',');
        }
        first = false;
        string(&key, out);
        out.push(b':');
        if let Some(after) = rest.strip_prefix("NULL") {
            out.extend_from_slice(b"null");
            rest = after;
        } else {
            let (value, after) = quoted(rest)?;
            string(&value, out);
            rest = after;
        }
        rest = rest.trim_start();
    }
    out.push(b'}');
    Some(())
}

/// A double-quoted token at the start of `text`, unescaped, and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[index + 1..])),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Option<String> {
        let mut out = Vec::new();
        hstore_json(text, &mut out).then(|| String::from_utf8(out).expect("UTF-8"))
    }

    #[test]
    fn reads_postgresqls_output_form() {
        assert_eq!(
            json(r#""a"=>"1", "b c"=>NULL"#).as_deref(),
            Some(r#"{"a":"1","b c":null}"#)
        );
        assert_eq!(json("").as_deref(), Some("{}"));
        assert_eq!(
            json(r#""q\"uote"=>"back\\slash", "NULL"=>"NULL""#).as_deref(),
            Some(r#"{"q\"uote":"back\\slash","NULL":"NULL"}"#)
        );
        assert_eq!(json(r#""é"=>"ü""#).as_deref(), Some(r#"{"é":"ü"}"#));
    }

    #[test]
    fn refuses_what_is_not_an_hstore() {
        for text in [r#""a"=>"#, r#""a"=>"1" "b"=>"2""#, "a=>1", r#""a"=>"1"#] {
            assert_eq!(json(text), None, "{text}");
        }
    }
}
