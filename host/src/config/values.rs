//! Typed spec values: durations, sizes and the producer's choices. Each parses
//! its text form when the YAML is read (a bad one is a YAML error naming the line
//! and field) and describes itself to the JSON Schema, so an editor flags
//! `heartbeat_interval: soon` before weir sees it. What a well-formed value must
//! also be (longer than zero, within librdkafka's bounds) is `validate`'s.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The text form of durations, for the JSON Schema.
const DURATION_PATTERN: &str = r"^\s*[0-9]+\s*(ms|s|m|h)\s*$";
/// The text form of sizes, for the JSON Schema.
const SIZE_PATTERN: &str = r"^\s*[0-9]+\s*(B|KiB|MiB|GiB)?\s*$";

/// A duration written `500ms`, `10s`, `2m` or `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Duration);

/// A duration, or `off` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalOrOff(pub Option<Duration>);

/// A duration, or `forever` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntervalOrForever(pub Option<Duration>);

/// A size written `256MiB`, `1GiB`, `512KiB`, or a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

/// A duration with one word standing for "none" (`off`, `forever`).
fn interval_or(word: &'static str, text: &str) -> Result<Option<Duration>, String> {
    if text.trim() == word {
        return Ok(None);
    }
    parse_duration(text)
        .map(Some)
        .map_err(|message| format!("{message}, or {word}"))
}

/// Deserializes from a string through `parse`.
struct TextVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        (self.parse)(text).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<T, E> {
        self.visit_str(&number.to_string())
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<T, E> {
        self.visit_str(&number.to_string())
    }
}

/// A newtype read from its text form through a parse function, with its JSON
/// Schema: the pieces every typed value repeats.
macro_rules! text_value {
    ($type:ident, $expecting:literal, $parse:expr, $schema:tt) => {
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer
                    .deserialize_str(TextVisitor {
                        expecting: $expecting,
                        parse: $parse,
                    })
                    .map($type)
            }
        }

        impl JsonSchema for $type {
            fn schema_name() -> Cow<'static, str> {
                stringify!($type).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

text_value!(
    Interval,
    "a duration like 500ms, 10s, 2m or 1h",
    parse_duration,
    {
        "type": "string",
        "pattern": DURATION_PATTERN,
        "description": "A duration: 500ms, 10s, 2m, 1h.",
    }
);

text_value!(
    IntervalOrOff,
    "a duration like 500ms, 10s, 2m or 1h, or off",
    |text| interval_or("off", text),
    {
        "type": "string",
        "anyOf": [{ "pattern": DURATION_PATTERN }, { "const": "off" }],
        "description": "A duration (500ms, 10s, 2m, 1h), or off.",
    }
);

text_value!(
    IntervalOrForever,
    "a duration like 500ms, 10s, 2m or 1h, or forever",
    |text| interval_or("forever", text),
    {
        "type": "string",
        "anyOf": [{ "pattern": DURATION_PATTERN }, { "const": "forever" }],
        "description": "A duration (500ms, 10s, 2m, 1h), or forever.",
    }
);

text_value!(
    ByteSize,
    "a size like 256MiB or 1GiB, or a number of bytes",
    parse_size,
    {
        "anyOf": [
            { "type": "string", "pattern": SIZE_PATTERN },
            { "type": "integer", "minimum": 0 },
        ],
        "description": "A size: 512KiB, 256MiB, 1GiB, or a number of bytes.",
    }
);

/// `compression.type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression (what `kcat -P` sends).
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4, the default: cheap to compress, a good ratio for JSON.
    #[default]
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// `acks`: which replicas must have a message before Kafka acknowledges it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Acks {
    /// Every in-sync replica (`all`, `-1`): the default, and what idempotence needs.
    #[default]
    All,
    /// The leader only (`1`).
    Leader,
    /// Nobody (`0`): nothing is acknowledged, so nothing is known delivered.
    None,
}

impl Acks {
    /// librdkafka's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::All => "all",
            Acks::Leader => "1",
            Acks::None => "0",
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "all" | "-1" => Ok(Acks::All),
            "1" => Ok(Acks::Leader),
            "0" => Ok(Acks::None),
            other => Err(format!("{other:?} is not one of all, 1, 0")),
        }
    }
}

impl<'de> Deserialize<'de> for Acks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor {
            expecting: "all, 1 or 0",
            parse: Acks::parse,
        })
    }
}

impl JsonSchema for Acks {
    fn schema_name() -> Cow<'static, str> {
        "Acks".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "enum": ["all", "-1", "1", "0", -1, 1, 0],
            "description": "all (default), 1 or 0.",
        })
    }
}

/// `10s`, `500ms`, `2m`, `1h`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text)
        .ok_or_else(|| format!("{text:?} is not a duration like 500ms, 10s, 2m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(number.saturating_mul(3600))),
        _ => Err(format!(
            "{text:?} is not a duration like 500ms, 10s, 2m or 1h"
        )),
    }
}

/// `"500ms"` → `(500, "ms")`: leading digits, then the unit (spaces around it
/// allowed); `None` without digits.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit.trim()))
}

/// `256MiB`, `1GiB`, `512KiB` or a number of bytes.
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = number_and_unit(text)
        .ok_or_else(|| format!("{text:?} is not a size like 256MiB or 1GiB"))?;
    let number = usize::try_from(number).map_err(|_| format!("{text:?} is too large"))?;
    let factor: usize = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?} is not a size like 256MiB or 1GiB (units: B, KiB, MiB, GiB)"
            ));
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_their_text_forms() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("10").is_err());
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("1TB").is_err());
        assert!(parse_size("1 gigabyte").is_err());
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(interval_or("off", "off"), Ok(None));
        assert!(interval_or("off", "never").is_err());
        assert_eq!(Acks::parse("-1"), Ok(Acks::All));
        assert!(Acks::parse("most").is_err());
    }
}
