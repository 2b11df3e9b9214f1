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
use weir_guest::batch::arrow::datatypes::{ArrowError, DataType, Schema, TimeUnit};

use crate::parse::{CmpOp, Literal, Predicate};

/// What a comparison compares a column with, converted to the column's type once,
/// when the table is prepared.
#[derive(Debug)]
pub enum Operand {
    /// A one-element array of the column's type.
    Scalar(Scalar<ArrayRef>),
    /// A number against a column of numbers kept as text (unconstrained `numeric`).
    NumericText(f64),
    /// NULL: every comparison is NULL.
    Null,
}

/// A [`Predicate`] bound to one table's column types.
#[derive(Debug)]
pub enum Compiled {
    And(Box<Compiled>, Box<Compiled>),
    Or(Box<Compiled>, Box<Compiled>),
    Not(Box<Compiled>),
    Constant(Option<bool>),
    Column(String),
    Compare {
        column: String,
        op: CmpOp,
        operand: Operand,
    },
    CompareColumns {
        left: String,
        op: CmpOp,
        right: String,
    },
    IsNull {
        column: String,
        negated: bool,
    },
    InList {
        column: String,
        operands: Vec<Operand>,
        negated: bool,
    },
    Between {
        column: String,
        low: Operand,
        high: Operand,
        negated: bool,
    },
    Like {
        column: String,
        pattern: Vec<char>,
        negated: bool,
        case_insensitive: bool,
    },
}

/// Binds `predicate` to `schema`: names are checked and literals converted to their
/// column's type, so a batch only runs kernels.
pub fn compile(predicate: &Predicate, schema: &Schema) -> Result<Compiled, String> {
    let data_type = |name: &str| {
        schema
            .field_with_name(name)
            .map(|field| field.data_type().clone())
            .map_err(|_| format!("the table has no column {name}"))
    };
    let operand = |name: &str, value: &Literal| -> Result<Operand, String> {
        let data_type = data_type(name)?;
        Ok(match (&data_type, value) {
            (_, Literal::Null) => Operand::Null,
            (DataType::Utf8, Literal::Number(digits)) => Operand::NumericText(
                digits
                    .parse()
                    .map_err(|_| format!("{digits} is not a number"))?,
            ),
            _ => Operand::Scalar(Scalar::new(
                scalar_for(&data_type, value)
                    .map_err(|why| format!("column {name} ({data_type}): {why}"))?,
            )),
        })
    };
    Ok(match predicate {
        Predicate::And(a, b) => {
            Compiled::And(Box::new(compile(a, schema)?), Box::new(compile(b, schema)?))
        }
        Predicate::Or(a, b) => {
            Compiled::Or(Box::new(compile(a, schema)?), Box::new(compile(b, schema)?))
        }
        Predicate::Not(p) => Compiled::Not(Box::new(compile(p, schema)?)),
        Predicate::Constant(value) => Compiled::Constant(*value),
        Predicate::Column(name) => {
            let data_type = data_type(name)?;
            if data_type != DataType::Boolean {
                return Err(format!("column {name} ({data_type}) is not boolean"));
            }
            Compiled::Column(name.clone())
        }
        Predicate::Compare { column, op, value } => Compiled::Compare {
            column: column.clone(),
            op: *op,
            operand: operand(column, value)?,
        },
        Predicate::CompareColumns { left, op, right } => {
            let (l, r) = (data_type(left)?, data_type(right)?);
            if l != r {
                return Err(format!("cannot compare {left} ({l}) with {right} ({r})"));
            }
            Compiled::CompareColumns {
                left: left.clone(),
                op: *op,
                right: right.clone(),
            }
        }
        Predicate::IsNull { column, negated } => {
            data_type(column)?;
            Compiled::IsNull {
                column: column.clone(),
                negated: *negated,
            }
        }
        Predicate::InList {
            column,
            values,
            negated,
        } => Compiled::InList {
            column: column.clone(),
            operands: values
                .iter()
                .map(|value| operand(column, value))
                .collect::<Result<_, _>>()?,
            negated: *negated,
        },
        Predicate::Between {
            column,
            low,
            high,
            negated,
        } => Compiled::Between {
            column: column.clone(),
            low: operand(column, low)?,
            high: operand(column, high)?,
            negated: *negated,
        },
        Predicate::Like {
            column,
            pattern,
            negated,
            case_insensitive,
        } => {
            let data_type = data_type(column)?;
            if data_type != DataType::Utf8 {
                return Err(format!("LIKE needs a text column; {column} is {data_type}"));
            }
            Compiled::Like {
                column: column.clone(),
                pattern: if *case_insensitive {
                    pattern.to_lowercase().chars().collect()
                } else {
                    pattern.chars().collect()
                },
                negated: *negated,
                case_insensitive: *case_insensitive,
            }
        }
    })
}

/// The predicate on every row of `batch`: TRUE, FALSE or NULL per row.
pub fn evaluate(compiled: &Compiled, batch: &RecordBatch) -> Result<BooleanArray, String> {
    let rows = batch.num_rows();
    let error = |e: ArrowError| e.to_string();
    Ok(match compiled {
        Compiled::And(a, b) => {
            and_kleene(&evaluate(a, batch)?, &evaluate(b, batch)?).map_err(error)?
        }
        Compiled::Or(a, b) => {
            or_kleene(&evaluate(a, batch)?, &evaluate(b, batch)?).map_err(error)?
        }
        Compiled::Not(p) => not(&evaluate(p, batch)?).map_err(error)?,
        Compiled::Constant(value) => BooleanArray::from(vec![*value; rows]),
        Compiled::Column(name) => column(batch, name)?.as_boolean().clone(),
        Compiled::Compare {
            column: name,
            op,
            operand,
        } => compare(column(batch, name)?, *op, operand)?,
        Compiled::CompareColumns { left, op, right } => {
            kernel(*op, column(batch, left)?, column(batch, right)?)?
        }
        Compiled::IsNull {
            column: name,
            negated,
        } => {
            let array = column(batch, name)?;
            if *negated {
                is_not_null(array)
            } else {
                is_null(array)
            }
            .map_err(error)?
        }
        Compiled::InList {
            column: name,
            operands,
            negated,
        } => {
            let array = column(batch, name)?;
            let mut result = BooleanArray::from(vec![Some(false); rows]);
            for operand in operands {
                result = or_kleene(&result, &compare(array, CmpOp::Eq, operand)?).map_err(error)?;
            }
            if *negated {
                not(&result).map_err(error)?
            } else {
                result
            }
        }
        Compiled::Between {
            column: name,
            low,
            high,
            negated,
        } => {
            let array = column(batch, name)?;
            let within = and_kleene(
                &compare(array, CmpOp::GtEq, low)?,
                &compare(array, CmpOp::LtEq, high)?,
            )
            .map_err(error)?;
            if *negated {
                not(&within).map_err(error)?
            } else {
                within
            }
        }
        Compiled::Like {
            column: name,
            pattern,
            negated,
            case_insensitive,
        } => {
            let strings = column(batch, name)?.as_string::<i32>();
            let mut text = Vec::new();
            strings
                .iter()
                .map(|value| {
                    value.map(|value| {
                        text.clear();
                        if *case_insensitive {
                            text.extend(value.chars().flat_map(char::to_lowercase));
                        } else {
                            text.extend(value.chars());
                        }
                        like(&text, pattern) != *negated
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

/// `column op operand`.
fn compare(array: &ArrayRef, op: CmpOp, operand: &Operand) -> Result<BooleanArray, String> {
    match operand {
        Operand::Null => Ok(BooleanArray::from(vec![None; array.len()])),
        Operand::Scalar(scalar) => kernel(op, array, scalar),
        Operand::NumericText(bound) => Ok(array
            .as_string::<i32>()
            .iter()
            .map(|text| {
                let number: f64 = text?.parse().ok()?;
                Some(holds(op, number.partial_cmp(bound)?))
            })
            .collect()),
    }
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
