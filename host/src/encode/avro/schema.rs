//! Avro schemas derived from a ChangeBatch's Arrow schema, in the shape Debezium's
//! PostgreSQL connector gives them through Confluent's Avro converter: a `Key`
//! record of the primary key, a `Value` record of the row, and an `Envelope` with
//! `before`, `after`, `source`, `op`, `ts_ms` and `transaction`. Types carry
//! Kafka Connect's `connect.name` annotations (`io.debezium.time.MicroTimestamp`,
//! `org.apache.kafka.connect.data.Decimal`, …) so Connect-based consumers see the
//! semantic types they know.

use arrow::datatypes::Field;
use serde_json::{Value as Json, json};

use crate::encode::connect::SNAPSHOT_MARKERS;
use crate::encode::kind::ValueKind;
use crate::encode::layout::Layout;
use crate::encode::value::ValueOptions;

/// The Avro type of a column kind, defining named types on first use.
fn avro_type(kind: &ValueKind, names: &mut Names) -> Json {
    let connect =
        |avro: &str, name: &str| json!({"type": avro, "connect.version": 1, "connect.name": name});
    match kind {
        ValueKind::Boolean => json!("boolean"),
        ValueKind::Int16 => json!({"type": "int", "connect.type": "int16"}),
        ValueKind::Int32 => json!("int"),
        ValueKind::Int64 | ValueKind::UInt32 => json!("long"),
        ValueKind::Float32 => json!("float"),
        ValueKind::Float64 | ValueKind::DecimalDouble | ValueKind::NumericDouble => {
            json!("double")
        }
        ValueKind::Decimal { precision, scale } => json!({
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
        ValueKind::DecimalString | ValueKind::NumericString | ValueKind::TextForm => {
            json!("string")
        }
        ValueKind::VariableDecimal => {
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
        ValueKind::Text {
            connect_name: Some(name),
            allowed: Some(allowed),
        } => json!({
            "type": "string",
            "connect.version": 1,
            "connect.parameters": {"allowed": allowed},
            "connect.name": name,
        }),
        ValueKind::Text { connect_name, .. } => match connect_name {
            Some(name) => connect("string", name),
            None => json!("string"),
        },
        ValueKind::Bytes => json!("bytes"),
        // Debezium declares money a Connect Decimal with a scale and no precision;
        // Avro converters (Confluent's AvroData, Apicurio's) then declare their
        // default precision, 64, and so does weir: the same schema registers.
        ValueKind::Money => json!({
            "type": "bytes",
            "scale": 2,
            "precision": 64,
            "connect.version": 1,
            "connect.parameters": {"scale": "2"},
            "connect.name": "org.apache.kafka.connect.data.Decimal",
            "logicalType": "decimal",
        }),
        ValueKind::Hstore => connect("string", "io.debezium.data.Json"),
        ValueKind::Point => {
            const NAME: &str = "io.debezium.data.geometry.Point";
            if names.define(NAME) {
                json!({
                    "type": "record",
                    "name": "Point",
                    "namespace": "io.debezium.data.geometry",
                    "fields": [
                        {"name": "x", "type": "double"},
                        {"name": "y", "type": "double"},
                        {"name": "wkb", "type": ["null", "bytes"], "default": null},
                        {"name": "srid", "type": ["null", "int"], "default": null},
                    ],
                    "connect.doc": "Geometry (POINT)",
                    "connect.version": 1,
                    "connect.name": NAME,
                })
            } else {
                json!(NAME)
            }
        }
        ValueKind::Bits { length: 1 } => json!("boolean"),
        ValueKind::Bits { length } => json!({
            "type": "bytes",
            "connect.version": 1,
            "connect.parameters": {"length": length.to_string()},
            "connect.name": "io.debezium.data.Bits",
        }),
        ValueKind::Date => connect("int", "io.debezium.time.Date"),
        ValueKind::MicroTime => connect("long", "io.debezium.time.MicroTime"),
        ValueKind::MicroTimestamp => connect("long", "io.debezium.time.MicroTimestamp"),
        ValueKind::MilliTime => connect("int", "io.debezium.time.Time"),
        ValueKind::MilliTimestamp => connect("long", "io.debezium.time.Timestamp"),
        ValueKind::ZonedTimestamp { .. } => connect("string", "io.debezium.time.ZonedTimestamp"),
        ValueKind::MicroDuration => connect("long", "io.debezium.time.MicroDuration"),
        ValueKind::IntervalString => connect("string", "io.debezium.time.Interval"),
        ValueKind::Array(element) => {
            json!({"type": "array", "items": ["null", avro_type(element, names)]})
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
    pub(crate) kind: ValueKind,
    /// A plain (non-union) field of the `Value` record: the column is `NOT NULL`
    /// (or in the key) and every value has an Avro form, as Debezium declares it.
    pub(crate) required: bool,
}

/// A table's renamed columns: current name → its earlier names, oldest first.
pub(crate) type Aliases = std::collections::HashMap<String, Vec<String>>;

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
    /// Schemas for `layout`, records named under the namespace made of `name`;
    /// `aliases` gives renamed columns their earlier names.
    pub(crate) fn new(
        layout: &Layout,
        fields: &[&Field],
        name: &str,
        options: &ValueOptions,
        aliases: &Aliases,
    ) -> AvroSchemas {
        let columns: Vec<AvroColumn> = fields
            .iter()
            .enumerate()
            .map(|(position, field)| {
                let kind = ValueKind::of(field, options);
                let declared = layout.columns[position].required || layout.key.contains(&position);
                AvroColumn {
                    position,
                    required: declared && !kind.may_fail(),
                    kind,
                }
            })
            .collect();
        let namespace = avro_namespace(name);
        // Fields are required as PostgreSQL declares them (NOT NULL, the key)
        // unless a value may have no Avro form; an old image lacking a required
        // column (a delete without REPLICA IDENTITY FULL) holds its type's zero,
        // as Debezium's does.
        let record_fields = |names: &mut Names,
                             positions: &mut dyn Iterator<Item = usize>,
                             key: bool| {
            positions
                .map(|position| {
                    let column = &columns[position];
                    let name = avro_name(&layout.columns[column.position].name);
                    let avro = avro_type(&column.kind, names);
                    let required = if key {
                        !column.kind.may_fail()
                    } else {
                        column.required
                    };
                    let mut field = if !required {
                        json!({"name": name, "type": ["null", avro], "default": null})
                    } else {
                        json!({"name": name, "type": avro})
                    };
                    if let Some(earlier) = aliases.get(&layout.columns[column.position].name) {
                        let earlier: Vec<String> = earlier.iter().map(|n| avro_name(n)).collect();
                        field["aliases"] = json!(earlier);
                    }
                    field
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
                {"name": "transaction", "type": ["null", transaction_schema()], "default": null},
                {"name": "op", "type": "string"},
                {"name": "ts_ms", "type": ["null", "long"], "default": null},
                {"name": "ts_us", "type": ["null", "long"], "default": null},
                {"name": "ts_ns", "type": ["null", "long"], "default": null},
            ],
            "connect.version": 2,
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
                "connect.parameters": {"allowed": SNAPSHOT_MARKERS},
                "connect.default": "false",
                "connect.name": "io.debezium.data.Enum",
            }, "null"], "default": "false"},
            required("db", "string"),
            optional("sequence", "string"),
            optional("ts_us", "long"),
            optional("ts_ns", "long"),
            required("schema", "string"),
            required("table", "string"),
            optional("txId", "long"),
            optional("lsn", "long"),
            optional("xmin", "long"),
            optional("origin", "string"),
            optional("origin_lsn", "long"),
        ],
        "connect.version": 1,
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
