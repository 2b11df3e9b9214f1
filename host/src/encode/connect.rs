//! Kafka Connect schemas as Connect's JSON converter writes them with
//! `schemas.enable=true`: the `schema` half of `{"schema": …, "payload": …}` for
//! Debezium JSON. Field types and semantic names (`io.debezium.time.MicroTimestamp`,
//! `org.apache.kafka.connect.data.Decimal`, …) are those Debezium's PostgreSQL
//! connector declares, so consumers that read Connect schemas (JDBC sinks, ksqlDB)
//! type the columns as they would Debezium's.

use arrow::datatypes::Field;
use serde_json::{Value as Json, json};

use super::kind::ValueKind;
use super::layout::Layout;
use super::value::{BinaryMode, ValueOptions};

/// The Connect schema of a column kind.
fn connect_type(kind: &ValueKind, options: &ValueOptions, optional: bool) -> Json {
    let semantic = |kind: &str, name: &str| json!({"type": kind, "optional": optional, "name": name, "version": 1});
    let plain = |kind: &str| json!({"type": kind, "optional": optional});
    match kind {
        ValueKind::Boolean => plain("boolean"),
        ValueKind::Int16 => plain("int16"),
        ValueKind::Int32 => plain("int32"),
        ValueKind::Int64 | ValueKind::UInt32 => plain("int64"),
        ValueKind::Float32 => plain("float"),
        ValueKind::Float64 | ValueKind::DecimalDouble | ValueKind::NumericDouble => plain("double"),
        ValueKind::Decimal { precision, scale } => json!({
            "type": "bytes",
            "optional": optional,
            "name": "org.apache.kafka.connect.data.Decimal",
            "version": 1,
            "parameters": {
                "scale": scale.to_string(),
                "connect.decimal.precision": precision.to_string(),
            },
        }),
        ValueKind::DecimalString | ValueKind::NumericString | ValueKind::TextForm => {
            plain("string")
        }
        ValueKind::VariableDecimal => json!({
            "type": "struct",
            "fields": [
                {"type": "int32", "optional": false, "field": "scale"},
                {"type": "bytes", "optional": false, "field": "value"},
            ],
            "optional": optional,
            "name": "io.debezium.data.VariableScaleDecimal",
            "version": 1,
            "doc": "Variable scaled decimal",
        }),
        ValueKind::Text {
            connect_name: Some(name),
            allowed: Some(allowed),
        } => json!({
            "type": "string",
            "optional": optional,
            "name": name,
            "version": 1,
            "parameters": {"allowed": allowed},
        }),
        ValueKind::Text { connect_name, .. } => match connect_name {
            Some(name) => semantic("string", name),
            None => plain("string"),
        },
        ValueKind::Bytes => match options.binary {
            BinaryMode::Base64 => plain("bytes"),
            BinaryMode::Hex => plain("string"),
        },
        ValueKind::Date => semantic("int32", "io.debezium.time.Date"),
        ValueKind::MicroTime => semantic("int64", "io.debezium.time.MicroTime"),
        ValueKind::MicroTimestamp => semantic("int64", "io.debezium.time.MicroTimestamp"),
        ValueKind::MilliTime => semantic("int32", "io.debezium.time.Time"),
        ValueKind::MilliTimestamp => semantic("int64", "io.debezium.time.Timestamp"),
        ValueKind::ZonedTimestamp { .. } => semantic("string", "io.debezium.time.ZonedTimestamp"),
        ValueKind::MicroDuration => semantic("int64", "io.debezium.time.MicroDuration"),
        ValueKind::IntervalString => semantic("string", "io.debezium.time.Interval"),
        ValueKind::Money => json!({
            "type": "bytes",
            "optional": optional,
            "name": "org.apache.kafka.connect.data.Decimal",
            "version": 1,
            "parameters": {"scale": "2"},
        }),
        ValueKind::Hstore => semantic("string", "io.debezium.data.Json"),
        ValueKind::Point => json!({
            "type": "struct",
            "fields": [
                {"type": "double", "optional": false, "field": "x"},
                {"type": "double", "optional": false, "field": "y"},
                {"type": "bytes", "optional": true, "field": "wkb"},
                {"type": "int32", "optional": true, "field": "srid"},
            ],
            "optional": optional,
            "name": "io.debezium.data.geometry.Point",
            "version": 1,
            "doc": "Geometry (POINT)",
        }),
        ValueKind::Bits { length: 1 } => plain("boolean"),
        ValueKind::Bits { length } => json!({
            "type": "bytes",
            "optional": optional,
            "name": "io.debezium.data.Bits",
            "version": 1,
            "parameters": {"length": length.to_string()},
        }),
        ValueKind::Array(element) => json!({
            "type": "array",
            "items": connect_type(element, options, true),
            "optional": optional,
        }),
    }
}

/// The values `source.snapshot` may take (Debezium's `SnapshotRecord`).
pub(crate) const SNAPSHOT_MARKERS: &str =
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental";

/// The key and value schemas of a table, serialized once and written in front of
/// every message's payload.
#[derive(Debug, Clone)]
pub(crate) struct ConnectSchemas {
    /// `{"schema":<key schema>,"payload":`; `None` without a primary key.
    pub(crate) key_prefix: Option<Vec<u8>>,
    /// `{"schema":<envelope schema>,"payload":`.
    pub(crate) value_prefix: Vec<u8>,
}

impl ConnectSchemas {
    /// Schemas for `layout`, named `<name>.Key`, `<name>.Value` and
    /// `<name>.Envelope` (Debezium: `<topic.prefix>.<schema>.<table>`).
    pub(crate) fn new(
        layout: &Layout,
        fields: &[&Field],
        name: &str,
        options: &ValueOptions,
    ) -> ConnectSchemas {
        let kinds: Vec<ValueKind> = fields.iter().map(|f| ValueKind::of(f, options)).collect();
        let field = |position: usize, optional: bool| {
            let mut schema = connect_type(&kinds[position], options, optional);
            if let Some(object) = schema.as_object_mut() {
                object.insert("field".into(), json!(layout.columns[position].name));
            }
            schema
        };
        let key_prefix = (!layout.key.is_empty()).then(|| {
            let fields: Vec<Json> = layout
                .key
                .iter()
                .map(|&p| field(p, kinds[p].may_fail()))
                .collect();
            let schema = json!({
                "type": "struct",
                "fields": fields,
                "optional": false,
                "name": format!("{name}.Key"),
            });
            prefix(&schema)
        });
        // Required as PostgreSQL declares them: NOT NULL (every key column is).
        let value_fields: Vec<Json> = (0..kinds.len())
            .map(|p| {
                let required = layout.columns[p].required || layout.key.contains(&p);
                field(p, !required || kinds[p].may_fail())
            })
            .collect();
        let row = |field_name: &str| {
            json!({
                "type": "struct",
                "fields": value_fields,
                "optional": true,
                "name": format!("{name}.Value"),
                "field": field_name,
            })
        };
        let required =
            |kind: &str, field: &str| json!({"type": kind, "optional": false, "field": field});
        let optional =
            |kind: &str, field: &str| json!({"type": kind, "optional": true, "field": field});
        let envelope = json!({
            "type": "struct",
            "fields": [
                row("before"),
                row("after"),
                {
                    "type": "struct",
                    "fields": [
                        required("string", "version"),
                        required("string", "connector"),
                        required("string", "name"),
                        required("int64", "ts_ms"),
                        {
                            "type": "string",
                            "optional": true,
                            "name": "io.debezium.data.Enum",
                            "version": 1,
                            "parameters": {"allowed": SNAPSHOT_MARKERS},
                            "default": "false",
                            "field": "snapshot",
                        },
                        required("string", "db"),
                        optional("string", "sequence"),
                        optional("int64", "ts_us"),
                        optional("int64", "ts_ns"),
                        required("string", "schema"),
                        required("string", "table"),
                        optional("int64", "txId"),
                        optional("int64", "lsn"),
                        optional("int64", "xmin"),
                        optional("string", "origin"),
                        optional("int64", "origin_lsn"),
                    ],
                    "optional": false,
                    "name": "io.debezium.connector.postgresql.Source",
                    "version": 1,
                    "field": "source",
                },
                {
                    "type": "struct",
                    "fields": [
                        required("string", "id"),
                        required("int64", "total_order"),
                        required("int64", "data_collection_order"),
                    ],
                    "optional": true,
                    "name": "event.block",
                    "version": 1,
                    "field": "transaction",
                },
                required("string", "op"),
                optional("int64", "ts_ms"),
                optional("int64", "ts_us"),
                optional("int64", "ts_ns"),
            ],
            "optional": false,
            "name": format!("{name}.Envelope"),
            "version": 2,
        });
        ConnectSchemas {
            key_prefix,
            value_prefix: prefix(&envelope),
        }
    }
}

fn prefix(schema: &Json) -> Vec<u8> {
    let mut out = b"{\"schema\":".to_vec();
    out.extend_from_slice(schema.to_string().as_bytes());
    out.extend_from_slice(b",\"payload\":");
    out
}
