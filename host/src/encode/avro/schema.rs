//! Avro schemas derived from a ChangeBatch's Arrow schema, in the shape Debezium's
//! PostgreSQL connector gives them through Confluent's Avro converter: a `Key`
//! record of the primary key, a `Value` record of the row, and an `Envelope` with
//! `before`, `after`, `source`, `op`, `ts_ms` and `transaction`. Types carry
//! Kafka Connect's `connect.name` annotations (`io.debezium.time.MicroTimestamp`,
//! `org.apache.kafka.connect.data.Decimal`, …) so Connect-based consumers see the
//! semantic types they know.

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};
use serde_json::{Value as Json, json};

use crate::batch::schema::metadata;
use crate::encode::layout::Layout;
use crate::encode::value::{DecimalMode, IntervalMode, ValueOptions};

/// How one column is written in Avro. Decided once per batch schema, from the
/// Arrow type and the value options, and shared by the schema and the writer so
/// they cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AvroKind {
    Boolean,
    /// `int` with Connect's `int16` annotation.
    Int16,
    Int32,
    Int64,
    /// `oid`/`xid`: unsigned 32-bit, as `long`.
    UInt32,
    Float32,
    Float64,
    /// Connect `Decimal`: bytes of the unscaled value.
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// A Decimal128 column as text or as double.
    DecimalString,
    DecimalDouble,
    /// Unconstrained `numeric` (a Utf8 column): Debezium's `VariableScaleDecimal`,
    /// text, or double.
    VariableDecimal,
    NumericString,
    NumericDouble,
    /// A string; `connect_name` for `json`, `jsonb`, `uuid`, `xml`.
    Text {
        connect_name: Option<&'static str>,
    },
    Bytes,
    Date,
    MicroTime,
    MicroTimestamp,
    ZonedTimestamp,
    MicroDuration,
    IntervalString,
    /// One-dimensional array; elements may be null.
    Array(Box<AvroKind>),
    /// Anything else, as PostgreSQL's (or Arrow's) text form.
    TextForm,
}

impl AvroKind {
    /// The kind of an Arrow field.
    pub(crate) fn of(field: &Field, options: &ValueOptions) -> AvroKind {
        let pg_type = field.metadata().get(metadata::PG_TYPE).map(String::as_str);
        match field.data_type() {
            DataType::Boolean => AvroKind::Boolean,
            DataType::Int16 => AvroKind::Int16,
            DataType::Int32 => AvroKind::Int32,
            DataType::Int64 => AvroKind::Int64,
            DataType::UInt32 => AvroKind::UInt32,
            DataType::Float32 => AvroKind::Float32,
            DataType::Float64 => AvroKind::Float64,
            DataType::Decimal128(precision, scale) => match options.decimal {
                // Avro's decimal needs a scale of zero or more.
                DecimalMode::Precise if *scale >= 0 => AvroKind::Decimal {
                    precision: *precision,
                    scale: *scale,
                },
                DecimalMode::Precise | DecimalMode::String => AvroKind::DecimalString,
                DecimalMode::Double => AvroKind::DecimalDouble,
            },
            DataType::Utf8 if pg_type == Some("numeric") => match options.decimal {
                DecimalMode::Precise => AvroKind::VariableDecimal,
                DecimalMode::String => AvroKind::NumericString,
                DecimalMode::Double => AvroKind::NumericDouble,
            },
            DataType::Utf8 => AvroKind::Text {
                connect_name: match pg_type {
                    Some("json" | "jsonb") => Some("io.debezium.data.Json"),
                    Some("uuid") => Some("io.debezium.data.Uuid"),
                    Some("xml") => Some("io.debezium.data.Xml"),
                    _ => None,
                },
            },
            DataType::Binary => AvroKind::Bytes,
            DataType::Date32 => AvroKind::Date,
            DataType::Time64(TimeUnit::Microsecond) => AvroKind::MicroTime,
            DataType::Timestamp(TimeUnit::Microsecond, None) => AvroKind::MicroTimestamp,
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => AvroKind::ZonedTimestamp,
            DataType::Interval(IntervalUnit::MonthDayNano) => match options.interval {
                IntervalMode::Numeric => AvroKind::MicroDuration,
                IntervalMode::String => AvroKind::IntervalString,
            },
            DataType::List(element) => AvroKind::Array(Box::new(AvroKind::of(element, options))),
            _ => AvroKind::TextForm,
        }
    }

    /// Whether a value may have no Avro form (NaN or over 38 digits for
    /// `VariableScaleDecimal`, text that is no number for a double), so the field must
    /// admit null even in a key.
    pub(crate) fn may_fail(&self) -> bool {
        matches!(self, AvroKind::VariableDecimal | AvroKind::NumericDouble)
    }

    /// The Avro type, defining named types on first use.
    fn schema(&self, names: &mut Names) -> Json {
        let connect = |avro: &str, name: &str| json!({"type": avro, "connect.version": 1, "connect.name": name});
        match self {
            AvroKind::Boolean => json!("boolean"),
            AvroKind::Int16 => json!({"type": "int", "connect.type": "int16"}),
            AvroKind::Int32 => json!("int"),
            AvroKind::Int64 | AvroKind::UInt32 => json!("long"),
            AvroKind::Float32 => json!("float"),
            AvroKind::Float64 | AvroKind::DecimalDouble | AvroKind::NumericDouble => {
                json!("double")
            }
            AvroKind::Decimal { precision, scale } => json!({
                "type": "bytes",
                "scale": scale,
                "precision": precision,
                "connect.version": 1,
                "connect.parameters": {
                    "scale": scale.to_string(),
                    "connect.decimal.precision": precision.to_string(),
                },
                "connect.name": "org.apache.kafka.connect.data.Decimal",
                "logicalType": "decimal",
            }),
            AvroKind::DecimalString | AvroKind::NumericString | AvroKind::TextForm => {
                json!("string")
            }
            AvroKind::VariableDecimal => {
                const NAME: &str = "io.debezium.data.VariableScaleDecimal";
                if names.define(NAME) {
                    json!({
                        "type": "record",
                        "name": "VariableScaleDecimal",
                        "namespace": "io.debezium.data",
                        "fields": [
                            {"name": "scale", "type": "int"},
                            {"name": "value", "type": "bytes"},
                        ],
                        "connect.doc": "Variable scaled decimal",
                        "connect.version": 1,
                        "connect.name": NAME,
                    })
                } else {
                    json!(NAME)
                }
            }
            AvroKind::Text { connect_name } => match connect_name {
                Some(name) => connect("string", name),
                None => json!("string"),
            },
            AvroKind::Bytes => json!("bytes"),
            AvroKind::Date => connect("int", "io.debezium.time.Date"),
            AvroKind::MicroTime => connect("long", "io.debezium.time.MicroTime"),
            AvroKind::MicroTimestamp => connect("long", "io.debezium.time.MicroTimestamp"),
            AvroKind::ZonedTimestamp => connect("string", "io.debezium.time.ZonedTimestamp"),
            AvroKind::MicroDuration => connect("long", "io.debezium.time.MicroDuration"),
            AvroKind::IntervalString => connect("string", "io.debezium.time.Interval"),
            AvroKind::Array(element) => {
                json!({"type": "array", "items": ["null", element.schema(names)]})
            }
        }
    }
}

/// Named types already defined in the schema being built: Avro allows one
/// definition per full name, later uses refer to it by name.
#[derive(Debug, Default)]
struct Names(Vec<&'static str>);

impl Names {
    /// True the first time: the caller writes the definition.
    fn define(&mut self, name: &'static str) -> bool {
        if self.0.contains(&name) {
            return false;
        }
        self.0.push(name);
        true
    }
}

/// One user column as the Avro records have it.
#[derive(Debug, Clone)]
pub(crate) struct AvroColumn {
    /// Index among the layout's user columns.
    pub(crate) position: usize,
    pub(crate) kind: AvroKind,
}

/// The Avro view of one batch schema: columns, and the key and value schemas.
#[derive(Debug, Clone)]
pub(crate) struct AvroSchemas {
    pub(crate) columns: Vec<AvroColumn>,
    /// Positions (into `columns`) of the key columns; empty without a key.
    pub(crate) key: Vec<usize>,
    /// The key schema; `None` without a primary key (the message key is null).
    pub(crate) key_schema: Option<String>,
    pub(crate) value_schema: String,
}

impl AvroSchemas {
    /// Schemas for `layout` under the Avro namespace of `topic`.
    pub(crate) fn new(
        layout: &Layout,
        fields: &[&Field],
        topic: &str,
        options: &ValueOptions,
    ) -> AvroSchemas {
        let columns: Vec<AvroColumn> = fields
            .iter()
            .enumerate()
            .map(|(position, field)| AvroColumn {
                position,
                kind: AvroKind::of(field, options),
            })
            .collect();
        let namespace = avro_namespace(topic);
        // Value fields are optional: an old image may lack columns (a delete
        // without REPLICA IDENTITY FULL). Key fields are required unless a value
        // may have no Avro form.
        let record_fields =
            |names: &mut Names, positions: &mut dyn Iterator<Item = usize>, key: bool| {
                positions
                    .map(|position| {
                        let column = &columns[position];
                        let name = avro_name(&layout.columns[column.position].name);
                        let avro = column.kind.schema(names);
                        if !key || column.kind.may_fail() {
                            json!({"name": name, "type": ["null", avro], "default": null})
                        } else {
                            json!({"name": name, "type": avro})
                        }
                    })
                    .collect::<Vec<_>>()
            };
        let key_schema = (!layout.key.is_empty()).then(|| {
            let mut names = Names::default();
            let fields = record_fields(&mut names, &mut layout.key.iter().copied(), true);
            json!({
                "type": "record",
                "name": "Key",
                "namespace": namespace,
                "fields": fields,
                "connect.name": format!("{namespace}.Key"),
            })
            .to_string()
        });
        let mut names = Names::default();
        let value_fields = record_fields(&mut names, &mut (0..columns.len()), false);
        let value_record = json!({
            "type": "record",
            "name": "Value",
            "fields": value_fields,
            "connect.name": format!("{namespace}.Value"),
        });
        let value_schema = json!({
            "type": "record",
            "name": "Envelope",
            "namespace": namespace,
            "fields": [
                {"name": "before", "type": ["null", value_record], "default": null},
                {"name": "after", "type": ["null", "Value"], "default": null},
                {"name": "source", "type": source_schema()},
                {"name": "op", "type": "string"},
                {"name": "ts_ms", "type": ["null", "long"], "default": null},
                {"name": "transaction", "type": ["null", transaction_schema()], "default": null},
            ],
            "connect.version": 1,
            "connect.name": format!("{namespace}.Envelope"),
        })
        .to_string();
        AvroSchemas {
            key: layout.key.clone(),
            columns,
            key_schema,
            value_schema,
        }
    }
}

/// Debezium's `io.debezium.connector.postgresql.Source`, field for field.
fn source_schema() -> Json {
    let optional =
        |name: &str, avro: &str| json!({"name": name, "type": ["null", avro], "default": null});
    let required = |name: &str, avro: &str| json!({"name": name, "type": avro});
    json!({
        "type": "record",
        "name": "Source",
        "namespace": "io.debezium.connector.postgresql",
        "fields": [
            required("version", "string"),
            required("connector", "string"),
            required("name", "string"),
            required("ts_ms", "long"),
            {"name": "snapshot", "type": [{
                "type": "string",
                "connect.version": 1,
                "connect.parameters": {"allowed": "true,last,false,incremental"},
                "connect.default": "false",
                "connect.name": "io.debezium.data.Enum",
            }, "null"], "default": "false"},
            required("db", "string"),
            optional("sequence", "string"),
            required("schema", "string"),
            required("table", "string"),
            optional("txId", "long"),
            optional("lsn", "long"),
            optional("xmin", "long"),
        ],
        "connect.name": "io.debezium.connector.postgresql.Source",
    })
}

/// Debezium's transaction block (weir leaves it null).
fn transaction_schema() -> Json {
    json!({
        "type": "record",
        "name": "block",
        "namespace": "event",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "total_order", "type": "long"},
            {"name": "data_collection_order", "type": "long"},
        ],
        "connect.version": 1,
        "connect.name": "event.block",
    })
}

/// An Avro name: `[A-Za-z_][A-Za-z0-9_]*`, other characters replaced by `_` (as
/// Debezium's `field.name.adjustment.mode=avro`).
pub(crate) fn avro_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A topic as an Avro namespace: each dot-separated part an Avro name.
pub(crate) fn avro_namespace(topic: &str) -> String {
    topic
        .split('.')
        .filter(|part| !part.is_empty())
        .map(avro_name)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_avro_rules() {
        assert_eq!(avro_name("order-id"), "order_id");
        assert_eq!(avro_name("2fa"), "_2fa");
        assert_eq!(avro_name("ünï"), "_n_");
        assert_eq!(
            avro_namespace("shop.public.order-lines"),
            "shop.public.order_lines"
        );
        assert_eq!(avro_namespace("3rd.x"), "_3rd.x");
    }
}
