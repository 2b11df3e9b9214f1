//! Avro's binary encoding of the primitive types (Avro 1.11 specification,
//! "Binary Encoding"): zig-zag varints for `int` and `long`, little-endian IEEE 754
//! for `float` and `double`, length-prefixed `bytes` and `string`.

/// An `int` or `long`.
pub(crate) fn long(value: i64, out: &mut Vec<u8>) {
    #[allow(clippy::cast_sign_loss)]
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n >= 0x80 {
        #[allow(clippy::cast_possible_truncation)]
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    #[allow(clippy::cast_possible_truncation)]
    out.push(n as u8);
}

/// `bytes`, or a `string` given as UTF-8.
pub(crate) fn bytes(value: &[u8], out: &mut Vec<u8>) {
    long(i64::try_from(value.len()).unwrap_or(i64::MAX), out);
    out.extend_from_slice(value);
}

/// A `float`.
pub(crate) fn float(value: f32, out: &mut Vec<u8>) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// A `double`.
pub(crate) fn double(value: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// A `boolean`.
pub(crate) fn boolean(value: bool, out: &mut Vec<u8>) {
    out.push(u8::from(value));
}

/// The branch of a union, by its index in the schema.
pub(crate) fn union_branch(index: i64, out: &mut Vec<u8>) {
    long(index, out);
}

/// Confluent's wire format: magic byte 0, then the schema id as a big-endian i32.
pub(crate) fn confluent_header(schema_id: u32, out: &mut Vec<u8>) {
    out.push(0);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(value: i64) -> Vec<u8> {
        let mut out = Vec::new();
        long(value, &mut out);
        out
    }

    #[test]
    fn zig_zag_varints_as_the_specification_lists_them() {
        assert_eq!(encoded(0), [0x00]);
        assert_eq!(encoded(-1), [0x01]);
        assert_eq!(encoded(1), [0x02]);
        assert_eq!(encoded(-2), [0x03]);
        assert_eq!(encoded(2), [0x04]);
        assert_eq!(encoded(-64), [0x7f]);
        assert_eq!(encoded(64), [0x80, 0x01]);
        assert_eq!(encoded(i64::MAX).len(), 10);
        assert_eq!(
            encoded(i64::MIN),
            [0xff; 9].iter().copied().chain([0x01]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn strings_are_length_prefixed() {
        let mut out = Vec::new();
        bytes(b"foo", &mut out);
        assert_eq!(out, [0x06, b'f', b'o', b'o']);
    }
}
