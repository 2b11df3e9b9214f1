//! The text forms of `contract::pg_text` read back by this module's parser: what a
//! row plugin or a dead letter prints, the source reads the same.

use std::sync::Arc;

use arrow::array::{Array, Int32Builder, ListBuilder, StringBuilder};
use arrow::datatypes::IntervalMonthDayNano;

use super::parse;
use super::types::ElementKind;
use crate::contract::pg_text::{array, interval, time};

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
