//! `${VAR}` and `${VAR:-default}` in a spec: environment values put in as YAML
//! scalar values, never as YAML text.
//!
//! Expansion happens line by line before parsing, so the parser's line numbers stay
//! those of the file. A value is inserted as it is only where it reads back as the
//! same plain scalar; otherwise the scalar it stands in is written as a
//! double-quoted string with the value escaped. So a password holding `: `, `#` or
//! a quote stays one string, and a newline cannot add keys. Where quoting cannot
//! help (inside a `[…]`/`{…}` collection, a key, a single-quoted string with a
//! newline), the spec is refused with the variable's name, never its value.
//!
//! The values are kept, so that errors can be shown from the file as written:
//! see [`Expanded::redact`].

use super::spec::SpecError;

/// A spec's text with its variables expanded.
#[derive(Debug)]
pub(crate) struct Expanded {
    /// The text to parse.
    pub(crate) text: String,
    /// `(name, value)` of every variable put in, for [`Expanded::redact`].
    values: Vec<(String, String)>,
}

impl Expanded {
    /// `message` with every value put in from the environment replaced by the
    /// `${NAME}` it came from. Values shorter than four characters are left, since
    /// replacing them would garble line numbers and words; secrets are longer.
    pub(crate) fn redact(&self, message: &str) -> String {
        let mut values: Vec<&(String, String)> = self
            .values
            .iter()
            .filter(|(_, value)| value.chars().count() >= 4)
            .collect();
        // Longest first, so a value containing another is replaced whole.
        values.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        values
            .iter()
            .fold(message.to_owned(), |text, (name, value)| {
                text.replace(value.as_str(), &format!("${{{name}}}"))
            })
    }
}

/// Expands the variables of `text`, reading them through `env`.
pub(crate) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Expanded, SpecError> {
    let mut out = String::with_capacity(text.len());
    let mut values = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        if !line.contains("${") {
            out.push_str(line);
            continue;
        }
        let (body, ending) = split_line_ending(line);
        let expanded = expand_line(body, number, env, &mut values)?;
        out.push_str(&expanded);
        out.push_str(ending);
    }
    Ok(Expanded { text: out, values })
}

fn split_line_ending(line: &str) -> (&str, &str) {
    let body = line.trim_end_matches(['\n', '\r']);
    (body, &line[body.len()..])
}

/// Where on its line a scalar stands, as far as quoting is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// `key: value` or `- value`: a block scalar that may be re-quoted.
    Plain,
    DoubleQuoted,
    SingleQuoted,
    /// Inside `[…]` or `{…}`, or a key: values must be plain-safe there.
    Strict,
}

fn expand_line(
    line: &str,
    number: usize,
    env: &dyn Fn(&str) -> Option<String>,
    values: &mut Vec<(String, String)>,
) -> Result<String, SpecError> {
    let value_start = value_start(line);
    let first_variable = line.find("${").unwrap_or(line.len());
    let context = match value_start {
        Some(start) if first_variable >= start => match line[start..].chars().next() {
            Some('"') => Context::DoubleQuoted,
            Some('\'') => Context::SingleQuoted,
            Some('[' | '{') => Context::Strict,
            _ => Context::Plain,
        },
        _ => Context::Strict,
    };
    let start = value_start.unwrap_or(0);
    let (head, value) = line.split_at(start);
    // A plain scalar ends at a comment.
    let (value, comment) = match context {
        Context::Plain => match value.find(" #") {
            Some(at) => value.split_at(at),
            None => (value, ""),
        },
        _ => (value, ""),
    };
    if head.contains("${") {
        return Err(SpecError::UnsafeVariable {
            line: number,
            name: variable_names(head).next().unwrap_or_default(),
            reason: "a variable in a key is not supported",
        });
    }
    let mut expanded = String::with_capacity(value.len());
    let mut quote_whole = false;
    let mut rest = value;
    while let Some(open) = rest.find("${") {
        expanded.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find('}')
            .ok_or(SpecError::UnterminatedVariable { line: number })?;
        let inner = &after[..close];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let value = match (env(name), default) {
            (Some(value), _) => {
                values.push((name.to_owned(), value.clone()));
                value
            }
            (None, Some(default)) => default.to_owned(),
            (None, None) => {
                return Err(SpecError::MissingVariable {
                    line: number,
                    name: name.to_owned(),
                });
            }
        };
        let unsafe_variable = |reason| SpecError::UnsafeVariable {
            line: number,
            name: name.to_owned(),
            reason,
        };
        match context {
            Context::DoubleQuoted => push_double_quoted_escaped(&mut expanded, &value),
            Context::SingleQuoted => {
                if value.contains(['\n', '\r']) {
                    return Err(unsafe_variable(
                        "its value has a line break, which a single-quoted string cannot hold: write \"${NAME}\"",
                    ));
                }
                expanded.push_str(&value.replace('\'', "''"));
            }
            Context::Strict => {
                if !is_plain_safe(&value, true) {
                    return Err(unsafe_variable(
                        "its value has characters YAML reads as structure here (inside [...] or {...}): put it on a line of its own as key: \"${NAME}\"",
                    ));
                }
                expanded.push_str(&value);
            }
            Context::Plain => {
                quote_whole |= !is_plain_safe(&value, false);
                expanded.push_str(&value);
            }
        }
        rest = &after[close + 1..];
    }
    expanded.push_str(rest);
    let mut out = String::with_capacity(line.len() + expanded.len());
    out.push_str(head);
    let trimmed = expanded.trim_end();
    if context == Context::Plain && (quote_whole || !is_plain_safe(trimmed, false)) {
        out.push('"');
        push_double_quoted_escaped(&mut out, trimmed);
        out.push('"');
        out.push_str(&expanded[trimmed.len()..]);
    } else {
        out.push_str(&expanded);
    }
    out.push_str(comment);
    Ok(out)
}

/// The byte offset where the line's value starts: after `key: ` or `- `; `None`
/// for a line that is only a key or a list dash.
fn value_start(line: &str) -> Option<usize> {
    let indent = line.len() - line.trim_start().len();
    let mut at = indent;
    // `- ` items, possibly nested (`- - x`).
    while line[at..].starts_with("- ") {
        at += 2;
        at += line[at..].len() - line[at..].trim_start().len();
    }
    let rest = &line[at..];
    // A quoted or flow value right after the dash has no key.
    if rest.starts_with(['"', '\'', '[', '{']) {
        return Some(at);
    }
    match key_end(rest) {
        Some(colon) => {
            let value = colon + 1;
            let spaces = rest[value..].len() - rest[value..].trim_start().len();
            (value + spaces < rest.len()).then_some(at + value + spaces)
        }
        // `- value` without a key.
        None if at > indent => Some(at),
        None => None,
    }
}

/// The position of the `:` that ends a mapping key at the start of `text` (one
/// followed by a space or the end of the line).
fn key_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len())
        .find(|&i| bytes[i] == b':' && bytes.get(i + 1).is_none_or(|b| *b == b' ' || *b == b'\t'))
}

fn variable_names(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split("${").skip(1).filter_map(|part| {
        let inner = &part[..part.find('}')?];
        Some(inner.split(":-").next().unwrap_or(inner).to_owned())
    })
}

/// Whether `value` reads back as the same plain scalar: no indicator at its start,
/// no `: ` or ` #` inside, no line break or control character, no surrounding
/// space, and (in a flow collection) no `,[]{}`.
fn is_plain_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        // Empty would read as null.
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() {
        // `-5` is a number, and `-x` a plain scalar: a dash followed by a
        // non-space is fine.
        let dash_ok = first == '-' && value.chars().nth(1).is_some_and(|c| !c.is_whitespace());
        if !dash_ok {
            return false;
        }
    }
    if value.ends_with(char::is_whitespace) || value.ends_with(':') {
        return false;
    }
    if value.contains(": ") || value.contains(" #") || value.contains(":\t") {
        return false;
    }
    if value.chars().any(|c| c.is_control()) {
        return false;
    }
    !(in_flow && value.contains([',', '[', ']', '{', '}']))
}

fn push_double_quoted_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_with(text: &str, value: &str) -> Result<String, SpecError> {
        let value = value.to_owned();
        expand(text, &move |name| (name == "V").then(|| value.clone())).map(|e| e.text)
    }

    #[test]
    fn plain_safe_values_go_in_as_they_are() {
        assert_eq!(expand_with("a: ${V}\n", "5").expect("ok"), "a: 5\n");
        assert_eq!(
            expand_with("url: postgres://u:${V}@db/x # c\n", "s3cret").expect("ok"),
            "url: postgres://u:s3cret@db/x # c\n"
        );
        assert_eq!(
            expand_with("  - ${V}\n", "public.t").expect("ok"),
            "  - public.t\n"
        );
        assert_eq!(
            expand_with("t: [${V}, b]\n", "public.t").expect("ok"),
            "t: [public.t, b]\n"
        );
        assert_eq!(expand_with("b: ${V:-x:1}\n", "").expect("ok"), "b: \"\"\n");
        let text = expand("b: ${NONE:-localhost:9092}\n", &|_| None)
            .expect("ok")
            .text;
        assert_eq!(text, "b: localhost:9092\n");
    }

    #[test]
    fn structural_values_are_quoted_not_pasted() {
        assert_eq!(
            expand_with("password: ${V}\n", "a: b # c").expect("ok"),
            "password: \"a: b # c\"\n"
        );
        assert_eq!(
            expand_with("url: postgres://u:${V}@db\n", "x\ninjected: 1").expect("ok"),
            "url: \"postgres://u:x\\ninjected: 1@db\"\n"
        );
        assert_eq!(
            expand_with("p: \"${V}\"\n", "say \"hi\" \\").expect("ok"),
            "p: \"say \\\"hi\\\" \\\\\"\n"
        );
        assert_eq!(
            expand_with("p: '${V}'\n", "it's").expect("ok"),
            "p: 'it''s'\n"
        );
    }

    #[test]
    fn values_that_cannot_be_quoted_are_refused_without_the_value() {
        for (text, value) in [
            ("t: [${V}]\n", "a, b"),
            ("${V}: x\n", "secretkey"),
            ("p: '${V}'\n", "two\nlines"),
        ] {
            let message = expand_with(text, value).expect_err("refused").to_string();
            assert!(
                message.contains("line 1") && message.contains('V'),
                "{message}"
            );
            assert!(!message.contains(value), "{message}");
        }
    }

    #[test]
    fn redaction_puts_the_variable_back() {
        let expanded = expand("url: postgres://u:${P}@db\nn: ${N}\n", &|name| {
            Some(if name == "P" { "hunter22" } else { "1" }.to_owned())
        })
        .expect("ok");
        assert_eq!(
            expanded.redact("bad url postgres://u:hunter22@db at line 1"),
            "bad url postgres://u:${P}@db at line 1"
        );
    }
}
