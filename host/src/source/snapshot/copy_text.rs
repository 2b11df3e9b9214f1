//! `COPY … TO STDOUT` in text format, as PostgreSQL writes it: one row per line,
//! fields separated by tabs, `\N` for null, and backslash escapes for tabs,
//! newlines, backslashes and other bytes. Each field is exactly the type's text
//! output, the form pgoutput streams, so snapshot rows and streamed rows share one
//! parser into Arrow.

use bytes::{Buf as _, BytesMut};
use weir_pgoutput::{Tuple, TupleWriter};

/// Rows of a COPY text stream, fed in chunks of any size.
#[derive(Debug, Default)]
pub(crate) struct CopyTextRows {
    pending: BytesMut,
    writer: TupleWriter,
    scratch: Vec<u8>,
}

impl CopyTextRows {
    /// Adds the next chunk of the stream.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next complete row, or `None` until more data arrives.
    pub(crate) fn next_row(&mut self) -> Option<Tuple> {
        let end = self.pending.iter().position(|b| *b == b'\n')?;
        {
            let line = &self.pending[..end];
            for field in line.split(|b| *b == b'\t') {
                if field == b"\\N" {
                    self.writer.null();
                } else if field.contains(&b'\\') {
                    self.scratch.clear();
                    unescape(field, &mut self.scratch);
                    self.writer.text(&self.scratch);
                } else {
                    self.writer.text(field);
                }
            }
        }
        self.pending.advance(end + 1);
        Some(self.writer.finish())
    }

    /// Whether a partial row is left (the stream ended mid-row).
    pub(crate) fn has_partial_row(&self) -> bool {
        !self.pending.is_empty()
    }
}

/// Undoes COPY's text escapes: `\b \f \n \r \t \v`, `\\`, octal `\ooo`, hex `\xhh`;
/// any other escaped byte stands for itself.
fn unescape(field: &[u8], out: &mut Vec<u8>) {
    let mut bytes = field.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        let Some(escaped) = bytes.next() else {
            out.push(b'\\');
            break;
        };
        match escaped {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(escaped - b'0');
                for _ in 0..2 {
                    match bytes.peek() {
                        Some(digit @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(digit - b'0');
                            bytes.next();
                        }
                        _ => break,
                    }
                }
                out.push(u8::try_from(value & 0xff).unwrap_or(0));
            }
            b'x' => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match bytes.peek().and_then(|d| char::from(*d).to_digit(16)) {
                        Some(digit) => {
                            value = value * 16 + digit;
                            bytes.next();
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push(b'x');
                } else {
                    out.push(u8::try_from(value).unwrap_or(0));
                }
            }
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_pgoutput::TupleValue;

    use super::*;

    fn texts(tuple: &Tuple) -> Vec<Option<Vec<u8>>> {
        tuple
            .values()
            .map(|value| match value {
                TupleValue::Text(text) => Some(text.to_vec()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rows_across_chunks_with_nulls_and_escapes() {
        let mut rows = CopyTextRows::default();
        rows.push(b"1\ta\\tb\\\\c\t\\N\n2\tline\\none");
        let first = rows.next_row().expect("a whole row");
        assert_eq!(
            texts(&first),
            [Some(b"1".to_vec()), Some(b"a\tb\\c".to_vec()), None]
        );
        assert!(rows.next_row().is_none(), "the second row is not complete");
        rows.push(b"\t\\101\\x42\\q\n");
        let second = rows.next_row().expect("now it is");
        assert_eq!(
            texts(&second),
            [
                Some(b"2".to_vec()),
                Some(b"line\none".to_vec()),
                Some(b"ABq".to_vec())
            ]
        );
        assert!(!rows.has_partial_row());
    }
}
