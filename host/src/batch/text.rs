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
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        (seconds / 60) % 60,
        seconds % 60
    );
    fraction_digits(u64::try_from(fraction).unwrap_or(0), 6, out);
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
    let digits = format!("{fraction:0width$}");
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int32Builder, ListBuilder, StringBuilder};

    use super::super::parse;
    use super::super::types::ElementKind;
    use super::*;

    fn render<T>(value: T, f: impl Fn(T, &mut String)) -> String {
        let mut out = String::new();
        f(value, &mut out);
        out
    }

    #[test]
    fn times_round_trip_through_the_parser() {
        for micros in [
            0,
            1,
            500_000,
            45_296_789_000,
            86_399_999_999,
            86_400_000_000,
        ] {
            let text = render(micros, time);
            assert_eq!(parse::time(text.as_bytes()), Some(micros), "{text}");
        }
        assert_eq!(render(45_296_500_000, time), "12:34:56.5");
    }

    #[test]
    fn intervals_round_trip_through_the_parser() {
        let cases = [
            IntervalMonthDayNano::new(0, 0, 0),
            IntervalMonthDayNano::new(14, 3, 14_706_000_000_000),
            IntervalMonthDayNano::new(-14, -3, -14_706_500_000_000),
            IntervalMonthDayNano::new(0, 0, 500_000_000),
            IntervalMonthDayNano::new(0, 0, -1_000),
        ];
        for value in cases {
            let text = render(value, interval);
            assert_eq!(parse::interval(text.as_bytes()), Some(value), "{text}");
        }
        assert_eq!(
            render(
                IntervalMonthDayNano::new(14, 3, 14_706_000_000_000),
                interval
            ),
            "P1Y2M3DT4H5M6S"
        );
        assert_eq!(render(IntervalMonthDayNano::new(0, 0, 0), interval), "PT0S");
    }

    #[test]
    fn arrays_round_trip_through_the_parser() {
        let mut ints = ListBuilder::new(Int32Builder::new());
        ints.values().append_value(1);
        ints.values().append_null();
        ints.values().append_value(-3);
        ints.append(true);
        let ints = ints.finish();
        let mut text = String::new();
        array(&ints, 0, &mut text).expect("an int list");
        assert_eq!(text, "{1,NULL,-3}");

        let mut strings = ListBuilder::new(StringBuilder::new());
        strings.values().append_value("a \"b\" \\c");
        strings.values().append_value("");
        strings.append(true);
        let strings: Arc<dyn Array> = Arc::new(strings.finish());
        let mut text = String::new();
        array(&strings, 0, &mut text).expect("a text list");
        let (mut elements, mut scratch) = (Vec::new(), Vec::new());
        parse::array(
            text.as_bytes(),
            ElementKind::Text,
            &mut elements,
            &mut scratch,
        )
        .expect("parses back");
        assert_eq!(elements.len(), 2);
        assert_eq!(&scratch, b"a \"b\" \\c");
    }
}
