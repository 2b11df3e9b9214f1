//! `COPY … TO STDOUT (FORMAT binary)` as PostgreSQL writes it: a signature and
//! header, then per row a 16-bit field count and per field a 32-bit length (`-1`
//! for null) and the value's bytes, then a trailer of count `-1`.
//!
//! The snapshot asks for the binary form only of columns whose binary form weir
//! reads (numbers, dates and times, bytes), and for every other column casts to
//! `text`, whose binary form is the text form's bytes. So each field becomes a
//! binary or a text value of a pgoutput-layout tuple, and snapshot rows and
//! streamed rows share one path into Arrow.

use bytes::{Buf as _, BytesMut};
use weir_pgoutput::{Tuple, TupleWriter};

/// The 11-byte signature every binary COPY stream starts with.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The binary COPY stream broke its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("binary COPY stream: {0}")]
pub(crate) struct CopyFormatError(&'static str);

/// Rows of a binary COPY stream, fed in chunks of any size.
#[derive(Debug)]
pub(crate) struct CopyBinaryRows {
    pending: BytesMut,
    writer: TupleWriter,
    /// Per column: its bytes are the text form (the type's output) rather than
    /// the binary form.
    text: Vec<bool>,
    header_read: bool,
    ended: bool,
}

impl CopyBinaryRows {
    /// Rows whose column `i` holds text when `text[i]`, else the binary form.
    pub(crate) fn new(text: Vec<bool>) -> Self {
        CopyBinaryRows {
            pending: BytesMut::new(),
            writer: TupleWriter::default(),
            text,
            header_read: false,
            ended: false,
        }
    }

    /// Adds the next chunk of the stream.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
    }

    /// The next complete row, or `None` until more data arrives (or after the
    /// trailer).
    pub(crate) fn next_row(&mut self) -> Result<Option<Tuple>, CopyFormatError> {
        if !self.header_read && !self.read_header()? {
            return Ok(None);
        }
        if self.ended || self.pending.len() < 2 {
            return Ok(None);
        }
        let count = i16::from_be_bytes([self.pending[0], self.pending[1]]);
        if count == -1 {
            self.ended = true;
            self.pending.advance(2);
            return Ok(None);
        }
        if usize::try_from(count).ok() != Some(self.text.len()) {
            return Err(CopyFormatError("a row with an unexpected number of fields"));
        }
        // Check the whole row is here before writing any of it.
        let mut at = 2;
        for _ in 0..self.text.len() {
            let Some(length) = self.pending.get(at..at + 4) else {
                return Ok(None);
            };
            let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
            at += 4;
            if length >= 0 {
                at += usize::try_from(length).unwrap_or(usize::MAX);
            } else if length != -1 {
                return Err(CopyFormatError("a negative field length"));
            }
            if at > self.pending.len() {
                return Ok(None);
            }
        }
        let mut at = 2;
        for text in &self.text {
            let length = i32::from_be_bytes([
                self.pending[at],
                self.pending[at + 1],
                self.pending[at + 2],
                self.pending[at + 3],
            ]);
            at += 4;
            match usize::try_from(length) {
                Err(_) => self.writer.null(),
                Ok(length) => {
                    let value = &self.pending[at..at + length];
                    if *text {
                        self.writer.text(value);
                    } else {
                        self.writer.binary(value);
                    }
                    at += length;
                }
            }
        }
        self.pending.advance(at);
        Ok(Some(self.writer.finish()))
    }

    /// Whether the stream stopped before its trailer, or mid-row.
    pub(crate) fn is_incomplete(&self) -> bool {
        !self.ended || !self.pending.is_empty()
    }

    /// Reads the signature, flags and header extension; `false` until they are
    /// all here.
    fn read_header(&mut self) -> Result<bool, CopyFormatError> {
        let fixed = SIGNATURE.len() + 8;
        if self.pending.len() < fixed {
            return Ok(false);
        }
        if &self.pending[..SIGNATURE.len()] != SIGNATURE {
            return Err(CopyFormatError("no binary COPY signature"));
        }
        let extension = &self.pending[SIGNATURE.len() + 4..fixed];
        let extension =
            u32::from_be_bytes([extension[0], extension[1], extension[2], extension[3]]);
        let total = fixed + usize::try_from(extension).unwrap_or(usize::MAX);
        if self.pending.len() < total {
            return Ok(false);
        }
        self.pending.advance(total);
        self.header_read = true;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use weir_pgoutput::TupleValue;

    use super::*;

    fn stream(rows: &[&[Option<&[u8]>]]) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        for row in rows {
            out.extend_from_slice(&i16::try_from(row.len()).expect("fields").to_be_bytes());
            for field in *row {
                match field {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(value) => {
                        out.extend_from_slice(
                            &i32::try_from(value.len()).expect("length").to_be_bytes(),
                        );
                        out.extend_from_slice(value);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn rows_split_across_chunks_keep_binary_text_and_nulls() {
        let one = 7i64.to_be_bytes();
        let data = stream(&[
            &[Some(&one), Some(b"seven")],
            &[None, Some(b"")],
            &[Some(&one), None],
        ]);
        let mut rows = CopyBinaryRows::new(vec![false, true]);
        let mut seen = Vec::new();
        // One byte at a time: every boundary is a chunk boundary somewhere.
        for byte in &data {
            rows.push(std::slice::from_ref(byte));
            while let Some(tuple) = rows.next_row().expect("valid") {
                seen.push(
                    tuple
                        .values()
                        .map(|v| match v {
                            TupleValue::Binary(b) => format!("b{b:?}"),
                            TupleValue::Text(t) => format!("t{}", String::from_utf8_lossy(t)),
                            TupleValue::Null => "null".to_owned(),
                            TupleValue::UnchangedToast => "toast".to_owned(),
                        })
                        .collect::<Vec<_>>(),
                );
            }
        }
        assert!(!rows.is_incomplete());
        assert_eq!(
            seen,
            vec![
                vec![format!("b{:?}", &one[..]), "tseven".to_owned()],
                vec!["null".to_owned(), "t".to_owned()],
                vec![format!("b{:?}", &one[..]), "null".to_owned()],
            ]
        );
    }

    #[test]
    fn a_wrong_field_count_or_signature_is_an_error() {
        let mut rows = CopyBinaryRows::new(vec![false]);
        rows.push(&stream(&[&[Some(b"a"), Some(b"b")]]));
        assert!(rows.next_row().is_err());
        let mut rows = CopyBinaryRows::new(vec![false]);
        rows.push(b"PGCOPY\nXXXXXXXXXXXXXXXXXXXX");
        assert!(rows.next_row().is_err());
    }
}
