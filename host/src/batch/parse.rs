//! Parsers for PostgreSQL's text output forms, as a replication session of weir's
//! receives them (`DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=iso_8601`,
//! `extra_float_digits=3`, `bytea_output=hex`; see the replication connection).
//!
//! Each returns `None` for text it does not recognise; the caller decides what that
//! means. None allocates.

use arrow::datatypes::IntervalMonthDayNano;

use super::types::ElementKind;

/// Microseconds per day.
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// `t` / `f`.
pub(crate) fn bool(text: &[u8]) -> Option<bool> {
    match text {
        b"t" => Some(true),
        b"f" => Some(false),
        _ => None,
    }
}

/// A decimal integer with optional sign, checked for overflow.
pub(crate) fn int<T: TryFrom<i64>>(text: &[u8]) -> Option<T> {
    let (negative, digits) = split_sign(text);
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let d = i64::from(digit - b'0');
        // Accumulate towards the sign, so i64::MIN parses without overflow.
        value = if negative {
            value.checked_mul(10)?.checked_sub(d)?
        } else {
            value.checked_mul(10)?.checked_add(d)?
        };
    }
    T::try_from(value).ok()
}

/// An unsigned decimal integer (`oid`, `xid`).
pub(crate) fn uint32(text: &[u8]) -> Option<u32> {
    let value: i64 = int(text)?;
    u32::try_from(value).ok()
}

/// `real` / `double precision`, including `NaN`, `Infinity` and `-Infinity`.
pub(crate) fn float<T: std::str::FromStr>(text: &[u8]) -> Option<T> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A `numeric` as an unscaled integer at `scale` (which may be negative), e.g.
/// `"129.90"` at scale 2 is 12990 and `"12300"` at scale -2 is 123. `None` for `NaN`
/// and for text with more fractional digits than `scale` keeps.
pub(crate) fn decimal(text: &[u8], scale: i8) -> Option<i128> {
    let (negative, body) = split_sign(text);
    let (integer, fraction) = split_fraction(body);
    if integer.is_empty() && fraction.is_empty() {
        return None;
    }
    let scale_digits = usize::try_from(scale.max(0)).ok()?;
    // PostgreSQL pads to the declared scale, so more digits than the scale means the
    // text is not of this column's type; fewer are padded here.
    if fraction.len() > scale_digits {
        return None;
    }
    let mut value = push_digits(push_digits(0, integer)?, fraction)?;
    for _ in fraction.len()..scale_digits {
        value = value.checked_mul(10)?;
    }
    if scale < 0 {
        let divisor = 10i128.checked_pow(u32::from(scale.unsigned_abs()))?;
        if value % divisor != 0 {
            return None;
        }
        value /= divisor;
    }
    Some(if negative { -value } else { value })
}

/// A `date` as days since 1970-01-01; `infinity`/`-infinity` as `i32::MAX`/`i32::MIN`.
pub(crate) fn date(text: &[u8]) -> Option<i32> {
    match text {
        b"infinity" => return Some(i32::MAX),
        b"-infinity" => return Some(i32::MIN),
        _ => {}
    }
    let (body, bc) = strip_bc(text);
    let (days, rest) = ymd(body, bc)?;
    if !rest.is_empty() {
        return None;
    }
    i32::try_from(days).ok()
}

/// A `time` as microseconds since midnight (`24:00:00` is allowed, as in PostgreSQL).
pub(crate) fn time(text: &[u8]) -> Option<i64> {
    let (micros, rest) = hms(text)?;
    rest.is_empty().then_some(micros)
}

/// The latest instant a column of microseconds since 1970 holds besides `infinity`
/// (`i64::MAX`): 294247-01-10 04:00:54.775806 UTC. PostgreSQL's timestamps go on to
/// 294276 AD; those later values are written as this one, so the column keeps its
/// type (see docs/pipeline.md, "What each change does").
pub(crate) const LATEST_MICROS: i64 = i64::MAX - 1;

/// Microseconds since 1970 as a finite timestamp: past [`LATEST_MICROS`] it stays
/// there. (PostgreSQL's earliest, 4714 BC, is far inside the range.)
pub(crate) fn finite_micros(micros: i128) -> i64 {
    i64::try_from(micros.clamp(i128::from(i64::MIN + 1), i128::from(LATEST_MICROS)))
        .unwrap_or(LATEST_MICROS)
}

/// A `timestamp` (or, with `with_zone`, a `timestamptz` printed in UTC with its
/// offset) as microseconds since 1970-01-01 00:00:00 UTC; `±infinity` as `i64::MAX` /
/// `i64::MIN`, and a finite value past what 64 bits of microseconds hold as
/// [`LATEST_MICROS`].
pub(crate) fn timestamp(text: &[u8], with_zone: bool) -> Option<i64> {
    match text {
        b"infinity" => return Some(i64::MAX),
        b"-infinity" => return Some(i64::MIN),
        _ => {}
    }
    let (body, bc) = strip_bc(text);
    let (days, rest) = ymd(body, bc)?;
    let rest = rest.strip_prefix(b" ")?;
    let (micros, rest) = hms(rest)?;
    let offset_seconds = if with_zone {
        zone_offset(rest)?
    } else if rest.is_empty() {
        0
    } else {
        return None;
    };
    Some(finite_micros(
        i128::from(days) * i128::from(MICROS_PER_DAY) + i128::from(micros)
            - i128::from(offset_seconds) * 1_000_000,
    ))
}

/// An `interval` in ISO 8601 form (`P1Y2M3DT4H5M6.789S`, with signed parts, `PT0S`).
///
/// PostgreSQL's time part holds 64 bits of microseconds, Arrow's 64 bits of
/// nanoseconds: past ±292 years of hours, whole days of it move to the days part
/// (as `justify_hours` would), so the value keeps its type and its length.
pub(crate) fn interval(text: &[u8]) -> Option<IntervalMonthDayNano> {
    const NANOS_PER_DAY: i128 = 86_400_000_000_000;
    let mut rest = text.strip_prefix(b"P")?;
    let (mut months, mut days, mut nanos) = (0i32, 0i32, 0i128);
    let mut in_time = false;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(b"T") {
            in_time = true;
            rest = after;
            continue;
        }
        let end = rest
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'-' || *b == b'.'))?;
        let (number, unit) = (&rest[..end], *rest.get(end)?);
        rest = &rest[end + 1..];
        match (in_time, unit) {
            (false, b'Y') => months = months.checked_add(int::<i32>(number)?.checked_mul(12)?)?,
            (false, b'M') => months = months.checked_add(int::<i32>(number)?)?,
            (false, b'W') => days = days.checked_add(int::<i32>(number)?.checked_mul(7)?)?,
            (false, b'D') => days = days.checked_add(int::<i32>(number)?)?,
            (true, b'H') => {
                nanos = nanos.checked_add(i128::from(int::<i64>(number)?) * 3_600_000_000_000)?
            }
            (true, b'M') => {
                nanos = nanos.checked_add(i128::from(int::<i64>(number)?) * 60_000_000_000)?
            }
            (true, b'S') => nanos = nanos.checked_add(i128::from(seconds_as_nanos(number)?))?,
            _ => return None,
        }
    }
    if let Ok(nanos) = i64::try_from(nanos) {
        return Some(IntervalMonthDayNano::new(months, days, nanos));
    }
    let carried = i32::try_from(nanos / NANOS_PER_DAY).ok()?;
    Some(IntervalMonthDayNano::new(
        months,
        days.checked_add(carried)?,
        i64::try_from(nanos % NANOS_PER_DAY).ok()?,
    ))
}

/// One element of a parsed one-dimensional array.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Element {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Unescaped UTF-8 text at this range of the text scratch.
    Text {
        start: usize,
        end: usize,
    },
}

/// Parses PostgreSQL's text form of an array (`{1,2,NULL}`, `{"a b","c\"d",NULL,""}`),
/// appending its elements to `elements` and unescaped text elements to `text`.
///
/// PostgreSQL does not fix an array column's dimensions, so an `integer[]` column may
/// hold `{{1,2},{3,4}}` or `[0:1]={7,8}`. Such a value keeps the column a list: its
/// elements in PostgreSQL's storage order (what `unnest` returns), the shape and
/// the bounds dropped. `None` for elements that are not of `kind` or text that is
/// not an array.
pub(crate) fn array(
    input: &[u8],
    kind: ElementKind,
    elements: &mut Vec<Element>,
    text: &mut Vec<u8>,
) -> Option<()> {
    let mut rest = without_bounds(input)?.strip_prefix(b"{")?;
    if rest == b"}" {
        return Some(());
    }
    let mut depth = 1usize;
    loop {
        // A value: sub-arrays open first.
        while let Some(after) = rest.strip_prefix(b"{") {
            depth += 1;
            rest = after;
        }
        let (element, after) = array_element(rest, kind, text)?;
        elements.push(element);
        rest = after;
        // After it: sub-arrays close, then a comma or the end.
        while let Some(after) = rest.strip_prefix(b"}") {
            depth -= 1;
            rest = after;
            if depth == 0 {
                return rest.is_empty().then_some(());
            }
        }
        rest = rest.strip_prefix(b",")?;
    }
}

/// The array text after a dimension decoration (`[0:1][1:2]=`), which PostgreSQL
/// writes when a lower bound is not 1.
fn without_bounds(input: &[u8]) -> Option<&[u8]> {
    if input.first() != Some(&b'[') {
        return Some(input);
    }
    let equals = input.iter().position(|b| *b == b'=')?;
    input[..equals]
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'[' | b']' | b':' | b'-'))
        .then(|| &input[equals + 1..])
}

/// One element at the start of `rest` (quoted, `NULL`, or a bare token ending at `,`
/// or `}`), and what follows it.
fn array_element<'a>(
    rest: &'a [u8],
    kind: ElementKind,
    text: &mut Vec<u8>,
) -> Option<(Element, &'a [u8])> {
    if rest.first() == Some(&b'"') {
        let start = text.len();
        let mut i = 1;
        loop {
            match *rest.get(i)? {
                b'\\' => {
                    text.push(*rest.get(i + 1)?);
                    i += 2;
                }
                b'"' => break,
                byte => {
                    text.push(byte);
                    i += 1;
                }
            }
        }
        // The unescaped element is already in place at text[start..].
        let element = if kind == ElementKind::Text {
            std::str::from_utf8(&text[start..]).ok()?;
            Element::Text {
                start,
                end: text.len(),
            }
        } else {
            let element = non_text(kind, &text[start..]);
            text.truncate(start);
            element?
        };
        return Some((element, &rest[i + 1..]));
    }
    let end = rest
        .iter()
        .position(|b| matches!(b, b',' | b'}'))
        .unwrap_or(rest.len());
    let token = &rest[..end];
    let element = if token.is_empty() {
        return None;
    } else if token == b"NULL" {
        Element::Null
    } else if kind == ElementKind::Text {
        std::str::from_utf8(token).ok()?;
        let start = text.len();
        text.extend_from_slice(token);
        Element::Text {
            start,
            end: text.len(),
        }
    } else {
        non_text(kind, token)?
    };
    Some((element, &rest[end..]))
}

fn non_text(kind: ElementKind, token: &[u8]) -> Option<Element> {
    Some(match kind {
        ElementKind::Boolean => Element::Bool(bool(token)?),
        ElementKind::Int16 => Element::Int(i64::from(int::<i16>(token)?)),
        ElementKind::Int32 => Element::Int(i64::from(int::<i32>(token)?)),
        ElementKind::Int64 => Element::Int(int::<i64>(token)?),
        ElementKind::Float32 => Element::Float(f64::from(float::<f32>(token)?)),
        ElementKind::Float64 => Element::Float(float::<f64>(token)?),
        ElementKind::Text => return None,
    })
}

/// `\x…` hex `bytea` into `out` (cleared first).
pub(crate) fn bytea_hex(text: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let hex = text.strip_prefix(b"\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    out.clear();
    out.reserve(hex.len() / 2);
    for pair in hex.chunks_exact(2) {
        out.push((nibble(pair[0])? << 4) | nibble(pair[1])?);
    }
    Some(())
}

/// A leading `-` or `+` split off: (whether negative, the rest).
fn split_sign(text: &[u8]) -> (bool, &[u8]) {
    match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    }
}

/// `whole.fraction` split at the first `.`; the fraction is empty without one.
fn split_fraction(text: &[u8]) -> (&[u8], &[u8]) {
    match text.iter().position(|b| *b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[]),
    }
}

/// `value` with the decimal `digits` appended; `None` for a non-digit or overflow.
fn push_digits(mut value: i128, digits: &[u8]) -> Option<i128> {
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(i128::from(digit - b'0'))?;
    }
    Some(value)
}

fn nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `"-6.789"` seconds as nanoseconds.
fn seconds_as_nanos(text: &[u8]) -> Option<i64> {
    let (negative, body) = split_sign(text);
    let (whole, fraction) = split_fraction(body);
    if fraction.len() > 9 {
        return None;
    }
    let mut nanos = int::<i64>(whole)?.checked_mul(1_000_000_000)?;
    let mut scale = 100_000_000;
    for &digit in fraction {
        if !digit.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(digit - b'0') * scale;
        scale /= 10;
    }
    Some(if negative { -nanos } else { nanos })
}

fn strip_bc(text: &[u8]) -> (&[u8], bool) {
    match text.strip_suffix(b" BC") {
        Some(body) => (body, true),
        None => (text, false),
    }
}

/// `YYYY-MM-DD` (the year may have more than four digits) as days since 1970-01-01,
/// and the rest of the text. `bc` counts years before 1 AD (1 BC is year 0).
fn ymd(text: &[u8], bc: bool) -> Option<(i64, &[u8])> {
    let year_end = text.iter().position(|b| *b == b'-')?;
    let year: i64 = int(&text[..year_end])?;
    // PostgreSQL's dates end in 5874897 AD; a longer year is not one of its values
    // (and would overflow the day count).
    if year.unsigned_abs() > 10_000_000 {
        return None;
    }
    let rest = &text[year_end + 1..];
    let month: i64 = int(rest.get(..2)?)?;
    if rest.get(2) != Some(&b'-') {
        return None;
    }
    let day: i64 = int(rest.get(3..5)?)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let year = if bc { 1 - year } else { year };
    Some((days_from_civil(year, month, day), &rest[5..]))
}

/// `HH:MM:SS[.ffffff]` as microseconds, and the rest.
fn hms(text: &[u8]) -> Option<(i64, &[u8])> {
    let hours: i64 = int(text.get(..2)?)?;
    let minutes: i64 = int(text.get(3..5)?)?;
    let seconds: i64 = int(text.get(6..8)?)?;
    if text.get(2) != Some(&b':') || text.get(5) != Some(&b':') {
        return None;
    }
    let mut micros = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000;
    let mut rest = &text[8..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 6 {
            return None;
        }
        let mut value: i64 = int(&fraction[..digits])?;
        for _ in digits..6 {
            value *= 10;
        }
        micros += value;
        rest = &fraction[digits..];
    }
    Some((micros, rest))
}

/// `+HH[:MM[:SS]]` or `-HH…` as seconds east of UTC.
fn zone_offset(text: &[u8]) -> Option<i64> {
    let (sign, body) = match text.split_first()? {
        (b'+', rest) => (1, rest),
        (b'-', rest) => (-1, rest),
        _ => return None,
    };
    let mut parts = body.split(|b| *b == b':');
    let hours: i64 = int(parts.next()?)?;
    let minutes: i64 = parts.next().map_or(Some(0), int)?;
    let seconds: i64 = parts.next().map_or(Some(0), int)?;
    if parts.next().is_some() {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_overflow() {
        assert_eq!(int::<i16>(b"-32768"), Some(i16::MIN));
        assert_eq!(int::<i16>(b"32768"), None);
        assert_eq!(int::<i64>(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(int::<i64>(b"9223372036854775808"), None);
        assert_eq!(int::<i32>(b""), None);
        assert_eq!(int::<i32>(b"1x"), None);
        assert_eq!(uint32(b"4294967295"), Some(u32::MAX));
        assert_eq!(uint32(b"-1"), None);
    }

    #[test]
    fn floats_with_special_values() {
        assert_eq!(float::<f64>(b"1e+300"), Some(1e300));
        assert_eq!(float::<f64>(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert!(float::<f64>(b"NaN").is_some_and(f64::is_nan));
        assert_eq!(float::<f32>(b"0.1"), Some(0.1f32));
    }

    #[test]
    fn decimals_at_their_scale() {
        assert_eq!(decimal(b"129.90", 2), Some(12990));
        assert_eq!(decimal(b"-0.5", 2), Some(-50));
        assert_eq!(decimal(b"42", 2), Some(4200));
        assert_eq!(decimal(b"0.0000001500", 10), Some(1500));
        assert_eq!(decimal(b"12300", -2), Some(123));
        assert_eq!(decimal(b"12345", -2), None);
        assert_eq!(decimal(b"1.234", 2), None);
        assert_eq!(decimal(b"NaN", 2), None);
        assert_eq!(decimal(b"", 2), None);
        assert_eq!(
            decimal(b"99999999999999999999999999999999999999", 0),
            Some(10i128.pow(38) - 1)
        );
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(date(b"1970-01-01"), Some(0));
        assert_eq!(date(b"2026-11-21"), Some(20_778));
        assert_eq!(date(b"2000-02-29"), Some(11_016));
        assert_eq!(date(b"0001-01-01 BC"), Some(-719_528));
        assert_eq!(date(b"infinity"), Some(i32::MAX));
        assert_eq!(date(b"2026-13-01"), None);
        assert_eq!(time(b"24:00:00"), Some(MICROS_PER_DAY));
        assert_eq!(time(b"07:01:14.951387"), Some(25_274_951_387));
        assert_eq!(time(b"07:01:14.5"), Some(25_274_500_000));
        assert_eq!(time(b"07:01"), None);
    }

    #[test]
    fn timestamps_with_and_without_zone() {
        assert_eq!(timestamp(b"1970-01-01 00:00:00", false), Some(0));
        assert_eq!(
            timestamp(b"2025-12-31 18:30:00+00", true),
            timestamp(b"2026-01-01 00:00:00+05:30", true)
        );
        assert_eq!(
            timestamp(b"1970-01-01 00:00:00-01", true),
            Some(3_600_000_000)
        );
        assert_eq!(
            timestamp(b"10000-01-01 01:02:03.5", false),
            Some(253_402_304_523_500_000)
        );
        assert_eq!(
            timestamp(b"0044-03-15 12:00:00 BC", false),
            Some(-63_517_780_800_000_000)
        );
        assert_eq!(timestamp(b"-infinity", true), Some(i64::MIN));
        // PostgreSQL's last timestamps lie past 64 bits of microseconds: they stay
        // the latest finite one instead of turning the column to text.
        assert_eq!(
            timestamp(b"294276-12-31 23:59:59.999999", false),
            Some(LATEST_MICROS)
        );
        assert_eq!(
            timestamp(b"294247-01-10 04:00:54.775806+00", true),
            Some(LATEST_MICROS)
        );
        assert_eq!(
            timestamp(b"294247-01-10 04:00:54.775805+00", true),
            Some(LATEST_MICROS - 1)
        );
        assert_eq!(timestamp(b"99999999999-01-01 00:00:00", false), None);
        assert_eq!(
            timestamp(b"1970-01-01 00:00:00", true),
            None,
            "timestamptz needs its offset"
        );
    }

    #[test]
    fn iso_intervals() {
        assert_eq!(
            interval(b"P-10M-3DT4H5M6.789S"),
            Some(IntervalMonthDayNano::new(-10, -3, 14_706_789_000_000))
        );
        assert_eq!(interval(b"PT0S"), Some(IntervalMonthDayNano::new(0, 0, 0)));
        assert_eq!(
            interval(b"P1DT-1S"),
            Some(IntervalMonthDayNano::new(0, 1, -1_000_000_000))
        );
        assert_eq!(
            interval(b"P1Y2W"),
            Some(IntervalMonthDayNano::new(12, 14, 0))
        );
        assert_eq!(
            interval(b"PT-0.000001S"),
            Some(IntervalMonthDayNano::new(0, 0, -1000))
        );
        assert_eq!(interval(b"1 day"), None);
        // PostgreSQL's longest time part: whole days of it move to the days part.
        let longest = interval(b"PT-2562047788H-54.775807S").expect("parsed");
        let nanos = -(2_562_047_788_i128 * 3_600 + 54) * 1_000_000_000 - 775_807_000;
        assert_eq!(
            i128::from(longest.days) * 86_400_000_000_000 + i128::from(longest.nanoseconds),
            nanos
        );
        assert!(longest.nanoseconds.unsigned_abs() < 86_400_000_000_000);
        assert_eq!(longest.months, 0);
    }

    #[test]
    fn one_dimensional_arrays() {
        let (mut elements, mut text) = (Vec::new(), Vec::new());
        assert_eq!(
            array(b"{1,-2,NULL}", ElementKind::Int32, &mut elements, &mut text),
            Some(())
        );
        assert_eq!(elements, [Element::Int(1), Element::Int(-2), Element::Null]);

        elements.clear();
        let input = br#"{"a b","c\"d",NULL,"","NULL",plain,"back\\slash"}"#;
        assert_eq!(
            array(input, ElementKind::Text, &mut elements, &mut text),
            Some(())
        );
        let texts: Vec<Option<&str>> = elements
            .iter()
            .map(|e| match e {
                Element::Text { start, end } => std::str::from_utf8(&text[*start..*end]).ok(),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            [
                Some("a b"),
                Some("c\"d"),
                None,
                Some(""),
                Some("NULL"),
                Some("plain"),
                Some("back\\slash")
            ]
        );

        elements.clear();
        assert_eq!(
            array(b"{}", ElementKind::Int64, &mut elements, &mut text),
            Some(())
        );
        assert!(elements.is_empty());
        assert_eq!(
            array(b"{t,f}", ElementKind::Boolean, &mut elements, &mut text),
            Some(())
        );
        elements.clear();
        assert_eq!(
            array(
                b"{{1,2},{3,NULL}}",
                ElementKind::Int32,
                &mut elements,
                &mut text
            ),
            Some(())
        );
        assert_eq!(
            elements,
            [
                Element::Int(1),
                Element::Int(2),
                Element::Int(3),
                Element::Null
            ]
        );
        elements.clear();
        assert_eq!(
            array(b"[2:3]={1,2}", ElementKind::Int32, &mut elements, &mut text),
            Some(())
        );
        assert_eq!(
            array(
                br#"[0:0][-1:0]={{"x}",y}}"#,
                ElementKind::Text,
                &mut elements,
                &mut text
            ),
            Some(())
        );
        assert_eq!(elements.len(), 4);
        assert_eq!(
            array(b"{{{1}}}", ElementKind::Int16, &mut elements, &mut text),
            Some(())
        );
        assert_eq!(elements.last(), Some(&Element::Int(1)));
        for bad in [
            &b"{{1,2}"[..],
            b"{1,2}}",
            b"{{1,2}{3,4}}",
            b"[a]={1}",
            b"[1:2]{1,2}",
            b"{,1}",
            b"{{}}",
        ] {
            assert_eq!(
                array(bad, ElementKind::Int32, &mut elements, &mut text),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            array(b"{70000}", ElementKind::Int16, &mut elements, &mut text),
            None
        );
        assert_eq!(
            array(b"{1,}", ElementKind::Int32, &mut elements, &mut text),
            None
        );
        assert_eq!(
            array(
                b"{\"unterminated}",
                ElementKind::Text,
                &mut elements,
                &mut text
            ),
            None
        );
    }

    #[test]
    fn hex_bytea() {
        let mut out = Vec::new();
        assert_eq!(bytea_hex(b"\\x01ab", &mut out), Some(()));
        assert_eq!(out, [0x01, 0xab]);
        assert_eq!(bytea_hex(b"\\x", &mut out), Some(()));
        assert!(out.is_empty());
        assert_eq!(bytea_hex(b"\\x0", &mut out), None);
        assert_eq!(bytea_hex(b"01", &mut out), None);
    }
}
