//! PostgreSQL's text forms of Arrow values: the inverse of [`super::parse`], for
//! consumers that want a value as PostgreSQL would print it (row plugins, dead
//! letters). Each writes into a caller's `String`, so a loop reuses one buffer.

use std::fmt::Write;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, IntervalMonthDayNano,
    UInt16Type,
};

/// `HH:MM:SS[.ffffff]` for microseconds since midnight, as PostgreSQL prints `time`.
pub fn time(micros: i64, out: &mut String) {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    // Two digits each, hours more past 99 (a `time` is under 24 h, an
    // `interval`'s hours are not bounded).
    let hours = seconds / 3600;
    if (0..100).contains(&hours) {
        push_two_digits(hours, out);
    } else {
        let _ = write!(out, "{hours:02}");
    }
    out.push(':');
    push_two_digits((seconds / 60) % 60, out);
    out.push(':');
    push_two_digits(seconds % 60, out);
    fraction_digits(u64::try_from(fraction).unwrap_or(0), 6, out);
}

/// `value` (0 to 99) as two ASCII digits.
fn push_two_digits(value: i64, out: &mut String) {
    let value = u8::try_from(value.rem_euclid(100)).unwrap_or(0);
    out.push(char::from(b'0' + value / 10));
    out.push(char::from(b'0' + value % 10));
}

/// An interval in ISO 8601 (`P1Y2M3DT4H5M6.5S`, `PT0S`), as PostgreSQL prints it with
/// `IntervalStyle=iso_8601`.
pub fn interval(value: IntervalMonthDayNano, out: &mut String) {
    out.push('P');
    let start = out.len();
    let (years, months) = (value.months / 12, value.months % 12);
    for (amount, unit) in [(years, 'Y'), (months, 'M'), (value.days, 'D')] {
        if amount != 0 {
            let _ = write!(out, "{amount}{unit}");
        }
    }
    if value.nanoseconds != 0 {
        out.push('T');
        let negative = value.nanoseconds < 0;
        let nanos = value.nanoseconds.unsigned_abs();
        let sign = if negative { "-" } else { "" };
        let hours = nanos / 3_600_000_000_000;
        let minutes = (nanos / 60_000_000_000) % 60;
        let seconds = (nanos / 1_000_000_000) % 60;
        let fraction = nanos % 1_000_000_000;
        if hours != 0 {
            let _ = write!(out, "{sign}{hours}H");
        }
        if minutes != 0 {
            let _ = write!(out, "{sign}{minutes}M");
        }
        if seconds != 0 || fraction != 0 {
            let _ = write!(out, "{sign}{seconds}");
            fraction_digits(fraction, 9, out);
            out.push('S');
        }
    }
    if out.len() == start {
        out.push_str("T0S");
    }
}

/// `.ddd` with trailing zeros removed; nothing for zero.
fn fraction_digits(fraction: u64, width: usize, out: &mut String) {
    if fraction == 0 {
        return;
    }
    let mut digits = [b'0'; 20];
    let width = width.min(digits.len());
    let mut rest = fraction;
    for digit in digits[..width].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let significant = digits[..width]
        .iter()
        .rposition(|d| *d != b'0')
        .map_or(0, |last| last + 1);
    out.push('.');
    out.push_str(std::str::from_utf8(&digits[..significant]).unwrap_or_default());
}

/// A float as PostgreSQL prints it: `NaN`, `Infinity`, `-Infinity`, else the
/// shortest exact form.
pub fn float(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Element `index` of a list array as a one-dimensional PostgreSQL array literal
/// (`{1,2,NULL}`, `{"a b","c\"d"}`). `None` for element types weir never puts in a
/// list.
pub fn array(list: &dyn Array, index: usize, out: &mut String) -> Option<()> {
    let list = list.as_list_opt::<i32>()?;
    let values = list.value(index);
    out.push('{');
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        if values.is_null(i) {
            out.push_str("NULL");
            continue;
        }
        match values.data_type() {
            DataType::Boolean => out.push(if values.as_boolean().value(i) {
                't'
            } else {
                'f'
            }),
            DataType::Int16 => push_display(values.as_primitive::<Int16Type>().value(i), out),
            DataType::Int32 => push_display(values.as_primitive::<Int32Type>().value(i), out),
            DataType::Int64 => push_display(values.as_primitive::<Int64Type>().value(i), out),
            DataType::UInt16 => push_display(values.as_primitive::<UInt16Type>().value(i), out),
            DataType::Float32 => float(
                f64::from(values.as_primitive::<Float32Type>().value(i)),
                out,
            ),
            DataType::Float64 => float(values.as_primitive::<Float64Type>().value(i), out),
            DataType::Utf8 => quoted(values.as_string::<i32>().value(i), out),
            _ => return None,
        }
    }
    out.push('}');
    Some(())
}

fn push_display(value: impl std::fmt::Display, out: &mut String) {
    let _ = write!(out, "{value}");
}

/// An array element in double quotes, with `"` and `\` escaped.
fn quoted(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}
