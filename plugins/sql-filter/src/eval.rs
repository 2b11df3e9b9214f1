//! Evaluating a [`Predicate`] on a batch, column at a time with Arrow's comparison
//! kernels. SQL's three-valued logic holds: a comparison with NULL is NULL, and only
//! rows where the whole predicate is TRUE pass.

use std::sync::Arc;

use arrow_arith::boolean::{and_kleene, is_not_null, is_null, not, or_kleene};
use arrow_ord::cmp;
use weir_guest::batch::RecordBatch;
use weir_guest::batch::arrow::array::cast::AsArray;
use weir_guest::batch::arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Datum, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, Scalar, StringArray, TimestampMicrosecondArray,
    UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use weir_guest::batch::arrow::datatypes::{DataType, TimeUnit};

use crate::parse::{CmpOp, Literal, Predicate};

/// `predicate` on every row of `batch`: TRUE, FALSE or NULL per row.
pub fn evaluate(predicate: &Predicate, batch: &RecordBatch) -> Result<BooleanArray, String> {
    let rows = batch.num_rows();
    Ok(match predicate {
        Predicate::And(a, b) => {
            and_kleene(&evaluate(a, batch)?, &evaluate(b, batch)?).map_err(|e| e.to_string())?
        }
        Predicate::Or(a, b) => {
            or_kleene(&evaluate(a, batch)?, &evaluate(b, batch)?).map_err(|e| e.to_string())?
        }
        Predicate::Not(p) => not(&evaluate(p, batch)?).map_err(|e| e.to_string())?,
        Predicate::Constant(value) => BooleanArray::from(vec![*value; rows]),
        Predicate::Column(name) => {
            let array = column(batch, name)?;
            array
                .as_boolean_opt()
                .cloned()
                .ok_or_else(|| format!("column {name} ({}) is not boolean", array.data_type()))?
        }
        Predicate::Compare {
            column: name,
            op,
            value,
        } => compare(column(batch, name)?, name, *op, value)?,
        Predicate::CompareColumns { left, op, right } => {
            let (l, r) = (column(batch, left)?, column(batch, right)?);
            if l.data_type() != r.data_type() {
                return Err(format!(
                    "cannot compare {left} ({}) with {right} ({})",
                    l.data_type(),
                    r.data_type()
                ));
            }
            kernel(*op, l, r)?
        }
        Predicate::IsNull {
            column: name,
            negated,
        } => {
            let array = column(batch, name)?;
            if *negated {
                is_not_null(array)
            } else {
                is_null(array)
            }
            .map_err(|e| e.to_string())?
        }
        Predicate::InList {
            column: name,
            values,
            negated,
        } => {
            let array = column(batch, name)?;
            let mut result = BooleanArray::from(vec![Some(false); rows]);
            for value in values {
                let equal = compare(array, name, CmpOp::Eq, value)?;
                result = or_kleene(&result, &equal).map_err(|e| e.to_string())?;
            }
            if *negated {
                not(&result).map_err(|e| e.to_string())?
            } else {
                result
            }
        }
        Predicate::Between {
            column: name,
            low,
            high,
            negated,
        } => {
            let array = column(batch, name)?;
            let within = and_kleene(
                &compare(array, name, CmpOp::GtEq, low)?,
                &compare(array, name, CmpOp::LtEq, high)?,
            )
            .map_err(|e| e.to_string())?;
            if *negated {
                not(&within).map_err(|e| e.to_string())?
            } else {
                within
            }
        }
        Predicate::Like {
            column: name,
            pattern,
            negated,
            case_insensitive,
        } => {
            let array = column(batch, name)?;
            let strings = array.as_string_opt::<i32>().ok_or_else(|| {
                format!("LIKE needs a text column; {name} is {}", array.data_type())
            })?;
            let pattern: Vec<char> = if *case_insensitive {
                pattern.to_lowercase().chars().collect()
            } else {
                pattern.chars().collect()
            };
            strings
                .iter()
                .map(|value| {
                    value.map(|text| {
                        let matched = if *case_insensitive {
                            like(&text.to_lowercase().chars().collect::<Vec<_>>(), &pattern)
                        } else {
                            like(&text.chars().collect::<Vec<_>>(), &pattern)
                        };
                        matched != *negated
                    })
                })
                .collect()
        }
    })
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("the batch has no column {name}"))
}

fn kernel(op: CmpOp, left: &dyn Datum, right: &dyn Datum) -> Result<BooleanArray, String> {
    match op {
        CmpOp::Eq => cmp::eq(left, right),
        CmpOp::NotEq => cmp::neq(left, right),
        CmpOp::Lt => cmp::lt(left, right),
        CmpOp::LtEq => cmp::lt_eq(left, right),
        CmpOp::Gt => cmp::gt(left, right),
        CmpOp::GtEq => cmp::gt_eq(left, right),
    }
    .map_err(|e| e.to_string())
}

/// `column op literal`, with the literal converted to the column's type once.
fn compare(
    array: &ArrayRef,
    name: &str,
    op: CmpOp,
    value: &Literal,
) -> Result<BooleanArray, String> {
    if *value == Literal::Null {
        return Ok(BooleanArray::from(vec![None; array.len()]));
    }
    // Numbers kept as exact text (unconstrained `numeric`): compare numerically.
    if let (DataType::Utf8, Literal::Number(digits)) = (array.data_type(), value) {
        let bound: f64 = digits
            .parse()
            .map_err(|_| format!("{digits} is not a number"))?;
        let strings = array.as_string::<i32>();
        return Ok(strings
            .iter()
            .map(|text| {
                let number: f64 = text?.parse().ok()?;
                Some(holds(op, number.partial_cmp(&bound)?))
            })
            .collect());
    }
    let scalar = scalar_for(array.data_type(), value)
        .map_err(|why| format!("column {name} ({}): {why}", array.data_type()))?;
    kernel(op, array, &Scalar::new(scalar))
}

fn holds(op: CmpOp, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        CmpOp::Eq => ordering == Equal,
        CmpOp::NotEq => ordering != Equal,
        CmpOp::Lt => ordering == Less,
        CmpOp::LtEq => ordering != Greater,
        CmpOp::Gt => ordering == Greater,
        CmpOp::GtEq => ordering != Less,
    }
}

/// A one-element array of `data_type` holding `value`.
fn scalar_for(data_type: &DataType, value: &Literal) -> Result<ArrayRef, String> {
    let integer = || -> Result<i128, String> {
        match value {
            Literal::Number(digits) | Literal::Text(digits) => digits
                .trim()
                .parse::<i128>()
                .map_err(|_| format!("{digits} is not an integer")),
            other => Err(format!("{other:?} is not an integer")),
        }
    };
    let float = || -> Result<f64, String> {
        match value {
            Literal::Number(digits) | Literal::Text(digits) => digits
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{digits} is not a number")),
            other => Err(format!("{other:?} is not a number")),
        }
    };
    let text = || -> Result<&str, String> {
        match value {
            Literal::Text(text) => Ok(text),
            other => Err(format!("{other:?} is not a string")),
        }
    };
    macro_rules! int {
        ($array:ty, $t:ty) => {{
            let v =
                <$t>::try_from(integer()?).map_err(|_| "the literal is out of range".to_owned())?;
            Arc::new(<$array>::from(vec![v])) as ArrayRef
        }};
    }
    Ok(match data_type {
        DataType::Boolean => Arc::new(BooleanArray::from(vec![match value {
            Literal::Bool(b) => *b,
            Literal::Text(t) if matches!(t.as_str(), "t" | "true") => true,
            Literal::Text(t) if matches!(t.as_str(), "f" | "false") => false,
            other => return Err(format!("{other:?} is not a boolean")),
        }])),
        // `_op` holds the ASCII code of `'c'`, `'u'`, …
        DataType::UInt8 => match value {
            Literal::Text(t) if t.len() == 1 => Arc::new(UInt8Array::from(vec![t.as_bytes()[0]])),
            _ => int!(UInt8Array, u8),
        },
        DataType::Int8 => int!(Int8Array, i8),
        DataType::Int16 => int!(Int16Array, i16),
        DataType::Int32 => int!(Int32Array, i32),
        DataType::Int64 => int!(Int64Array, i64),
        DataType::UInt16 => int!(UInt16Array, u16),
        DataType::UInt32 => int!(UInt32Array, u32),
        DataType::UInt64 => int!(UInt64Array, u64),
        #[allow(clippy::cast_possible_truncation)]
        DataType::Float32 => Arc::new(Float32Array::from(vec![float()? as f32])),
        DataType::Float64 => Arc::new(Float64Array::from(vec![float()?])),
        DataType::Decimal128(precision, scale) => {
            let digits = match value {
                Literal::Number(digits) | Literal::Text(digits) => digits,
                other => return Err(format!("{other:?} is not a number")),
            };
            let unscaled = decimal(digits, *scale)
                .ok_or_else(|| format!("{digits} does not fit scale {scale}"))?;
            Arc::new(
                Decimal128Array::from(vec![unscaled])
                    .with_precision_and_scale(*precision, *scale)
                    .map_err(|e| e.to_string())?,
            )
        }
        DataType::Utf8 => Arc::new(StringArray::from(vec![text()?])),
        DataType::Date32 => {
            let days =
                date(text()?).ok_or_else(|| format!("{value:?} is not a date (YYYY-MM-DD)"))?;
            Arc::new(Date32Array::from(vec![days]))
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let micros = timestamp(text()?).ok_or_else(|| {
                format!("{value:?} is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]])")
            })?;
            Arc::new(TimestampMicrosecondArray::from(vec![micros]).with_timezone_opt(zone.clone()))
        }
        other => return Err(format!("comparisons on {other} are not supported")),
    })
}

/// `12.5` at scale 2 is 1250; `None` when the literal has more decimals than the
/// scale keeps (a comparison would silently round).
fn decimal(text: &str, scale: i8) -> Option<i128> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let scale = usize::try_from(scale).ok()?;
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > scale {
        return None;
    }
    let mut value: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    for index in 0..scale {
        let digit = fraction
            .as_bytes()
            .get(index)
            .map_or(0, |b| i128::from(b - b'0'));
        value = value.checked_mul(10)?.checked_add(digit)?;
    }
    Some(if negative { -value } else { value })
}

/// Days since 1970-01-01 for `YYYY-MM-DD`.
fn date(text: &str) -> Option<i32> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

/// Microseconds since the epoch for `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]][Z|±HH[:MM]]`.
fn timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (day, time) = text.split_once([' ', 'T']).unwrap_or((text, "00:00:00"));
    let days = i64::from(date(day)?);
    let (clock, offset_seconds) = match time.find(['+', '-', 'Z']) {
        Some(at) => {
            let zone = &time[at..];
            let seconds = if zone == "Z" {
                0
            } else {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let mut parts = zone[1..].split(':');
                let hours: i64 = parts.next()?.parse().ok()?;
                let minutes: i64 = parts.next().map_or(Some(0), |m| m.parse().ok())?;
                sign * (hours * 3600 + minutes * 60)
            };
            (&time[..at], seconds)
        }
        None => (time, 0),
    };
    let mut parts = clock.split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds = parts.next().unwrap_or("0");
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let whole: i64 = whole.parse().ok()?;
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = format!("{fraction:0<6}").parse().ok()?;
    Some(
        ((days * 86_400 + hours * 3600 + minutes * 60 + whole - offset_seconds) * 1_000_000)
            + micros,
    )
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes the next.
fn like(text: &[char], pattern: &[char]) -> bool {
    let (mut t, mut p) = (0, 0);
    let (mut star_p, mut star_t) = (None, 0);
    while t < text.len() {
        match pattern.get(p) {
            Some('%') => {
                star_p = Some(p);
                star_t = t;
                p += 1;
            }
            Some('\\') if pattern.get(p + 1) == Some(&text[t]) => {
                p += 2;
                t += 1;
            }
            Some('_') => {
                p += 1;
                t += 1;
            }
            Some(c) if *c == text[t] && *c != '\\' => {
                p += 1;
                t += 1;
            }
            _ => match star_p {
                Some(sp) => {
                    p = sp + 1;
                    star_t += 1;
                    t = star_t;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn like_matches_sql_semantics() {
        assert!(like(&chars("alice@example.com"), &chars("%@example.com")));
        assert!(like(&chars("abc"), &chars("a_c")));
        assert!(!like(&chars("abcd"), &chars("a_c")));
        assert!(like(&chars("100%"), &chars("100\\%")));
        assert!(!like(&chars("1000"), &chars("100\\%")));
        assert!(like(&chars(""), &chars("%")));
    }

    #[test]
    fn dates_and_timestamps_parse() {
        assert_eq!(date("1970-01-01"), Some(0));
        assert_eq!(date("2000-03-01"), Some(11_017));
        assert_eq!(timestamp("1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(timestamp("1970-01-01T01:00:00+01"), Some(0));
    }

    #[test]
    fn decimals_refuse_to_round() {
        assert_eq!(decimal("12.5", 2), Some(1250));
        assert_eq!(decimal("-0.01", 2), Some(-1));
        assert_eq!(decimal("12.345", 2), None);
        assert_eq!(decimal("12.300", 2), Some(1230));
    }
}
