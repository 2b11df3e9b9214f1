//! The `json` and `debezium-json` encoders on real ChangeBatches: every field read
//! back with serde_json and compared with what PostgreSQL says about the same rows.

use arrow::record_batch::RecordBatch;
use base64::Engine;
use serde_json::Value;
use weir::encode::{
    DebeziumJsonEncoder, DebeziumOptions, DecimalMode, Encoder, IntervalMode, JsonEncoder,
    Messages, SnapshotMarks, ValueOptions,
};
use weir_tests::{captured_batches, table_batch, with_primary_key};

const SETUP: &str = "
    CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), exact numeric,
                        qty int, at timestamptz, day date, span interval, tags text[], data bytea);
    ALTER TABLE items REPLICA IDENTITY FULL;
    CREATE TABLE notes (id bigint PRIMARY KEY, body text);
";

const CHANGES: [&str; 3] = [
    "INSERT INTO items VALUES
        (1, 'Ann', 129.90, 1234567890.123456789, 3, '2026-11-21 08:00:00.25+00', '2026-11-21',
         '1 day 02:00:00', '{a,\"b c\",NULL}', '\\x01ff'),
        (2, NULL, -0.01, -5, NULL, NULL, NULL, NULL, NULL, NULL);
     INSERT INTO notes VALUES (10, 'hello'), (11, 'world')",
    "UPDATE items SET name = 'Anne', qty = 4 WHERE id = 1; UPDATE notes SET body = 'hi' WHERE id = 10",
    "DELETE FROM items WHERE id = 2; DELETE FROM notes WHERE id = 11",
];

struct Fixture {
    items: RecordBatch,
    notes: RecordBatch,
    xids: Vec<u32>,
}

fn fixture() -> Fixture {
    let batches = captured_batches(SETUP, &CHANGES).expect("changes captured");
    let table = |name: &str| table_batch(&batches, name).expect("the table's batches");
    let items = table("items");
    let xids = {
        let xid = items.column_by_name("_xid").expect("xid");
        let xid = xid
            .as_any()
            .downcast_ref::<arrow::array::UInt32Array>()
            .expect("u32");
        xid.values().to_vec()
    };
    Fixture {
        items,
        notes: table("notes"),
        xids,
    }
}

fn encode(encoder: &mut dyn Encoder, batch: &RecordBatch) -> Vec<(Option<Value>, Option<Value>)> {
    let mut messages = Messages::default();
    encoder
        .encode(batch, SnapshotMarks::default(), &mut messages)
        .expect("encodes");
    messages
        .iter()
        .map(|m| {
            let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).expect("valid JSON");
            (messages.key(m).map(parse), messages.value(m).map(parse))
        })
        .collect()
}

fn decimal(value: &Value, scale: u32) -> f64 {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().expect("base64 text"))
        .expect("base64");
    let mut unscaled: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for byte in bytes {
        unscaled = (unscaled << 8) | i128::from(byte);
    }
    #[allow(clippy::cast_precision_loss)]
    let value = unscaled as f64 / 10f64.powi(i32::try_from(scale).expect("scale"));
    value
}

#[test]
fn debezium_envelopes_match_the_documented_shape_and_the_database() {
    let fixture = fixture();
    let items = with_primary_key(&fixture.items, "id");
    let mut encoder = DebeziumJsonEncoder::new(DebeziumOptions::new("shop", "shopdb"));
    let events = encode(&mut encoder, &items);
    // 2 inserts, 1 update, 1 delete + its tombstone.
    assert_eq!(events.len(), 5);
    let ops: Vec<&str> = events
        .iter()
        .map(|(_, v)| {
            v.as_ref()
                .map_or("tombstone", |v| v["op"].as_str().expect("op"))
        })
        .collect();
    assert_eq!(ops, ["c", "c", "u", "d", "tombstone"]);

    let (key, insert) = &events[0];
    assert_eq!(key.as_ref().expect("key"), &serde_json::json!({"id": 1}));
    let insert = insert.as_ref().expect("value");
    assert_eq!(insert["before"], Value::Null);
    let after = &insert["after"];
    assert_eq!(after["name"], "Ann");
    assert!(
        (decimal(&after["price"], 2) - 129.90).abs() < 1e-9,
        "{after}"
    );
    assert_eq!(after["exact"]["scale"], 9);
    assert_eq!(after["qty"], 3);
    assert_eq!(after["at"], "2026-11-21T08:00:00.250000Z");
    // SELECT date '2026-11-21' - date '1970-01-01' = 20778
    assert_eq!(after["day"], 20_778, "days since 1970-01-01");
    assert_eq!(
        after["span"], 93_600_000_000i64,
        "MicroDuration of 1 day 02:00"
    );
    assert_eq!(after["tags"], serde_json::json!(["a", "b c", null]));
    assert_eq!(after["data"], "Af8=");
    let source = &insert["source"];
    assert_eq!(source["connector"], "postgresql");
    assert_eq!(source["name"], "shop");
    assert_eq!(source["db"], "shopdb");
    assert_eq!(source["schema"], "public");
    assert_eq!(source["table"], "items");
    assert_eq!(source["snapshot"], "false");
    assert_eq!(source["txId"], fixture.xids[0]);
    assert!(source["lsn"].as_u64().is_some_and(|lsn| lsn > 0));
    assert!(
        source["ts_ms"]
            .as_i64()
            .is_some_and(|ts| ts > 1_700_000_000_000)
    );
    let sequence: Vec<String> =
        serde_json::from_str(source["sequence"].as_str().expect("a string")).expect("a JSON array");
    assert_eq!(
        sequence[1],
        source["lsn"].as_u64().expect("lsn").to_string()
    );
    assert!(insert["ts_ms"].as_i64().is_some());
    for field in ["before", "after", "source", "op", "ts_ms", "transaction"] {
        assert!(insert.get(field).is_some(), "envelope field {field}");
    }

    // The second insert: NULLs stay null, a negative decimal keeps its sign.
    let second = events[1].1.as_ref().expect("value");
    assert_eq!(second["after"]["name"], Value::Null);
    assert!((decimal(&second["after"]["price"], 2) + 0.01).abs() < 1e-9);

    // The update carries the full old image (REPLICA IDENTITY FULL).
    let update = events[2].1.as_ref().expect("value");
    assert_eq!(update["before"]["name"], "Ann");
    assert_eq!(update["after"]["name"], "Anne");
    assert_eq!(update["after"]["qty"], 4);

    // The delete: the old row, no after, then a tombstone with the same key.
    let delete = events[3].1.as_ref().expect("value");
    assert_eq!(delete["after"], Value::Null);
    assert_eq!(delete["before"]["id"], 2);
    assert_eq!(events[4].0, events[3].0);
    assert_eq!(
        events[3].0.as_ref().expect("key"),
        &serde_json::json!({"id": 2})
    );
}

#[test]
fn default_identity_deletes_carry_the_key_as_before_and_updates_no_before() {
    let fixture = fixture();
    let notes = with_primary_key(&fixture.notes, "id");
    let mut options = DebeziumOptions::new("shop", "shopdb");
    options.tombstones = false;
    let events = encode(&mut DebeziumJsonEncoder::new(options), &notes);
    assert_eq!(events.len(), 4, "no tombstone");
    let update = events[2].1.as_ref().expect("value");
    assert_eq!(update["before"], Value::Null);
    assert_eq!(update["after"]["body"], "hi");
    let delete = events[3].1.as_ref().expect("value");
    assert_eq!(
        delete["before"],
        serde_json::json!({"id": 11, "body": null})
    );

    // The replica identity stands in for an unknown primary key (notes has the
    // default identity, the key); under REPLICA IDENTITY FULL the key is unknown, so
    // it is null and no tombstone follows.
    let identity = encode(
        &mut DebeziumJsonEncoder::new(DebeziumOptions::new("s", "d")),
        &fixture.notes,
    );
    assert_eq!(identity[0].0, Some(serde_json::json!({"id": 10})));
    let keyless = encode(
        &mut DebeziumJsonEncoder::new(DebeziumOptions::new("s", "d")),
        &fixture.items,
    );
    assert!(
        keyless
            .iter()
            .all(|(key, value)| key.is_none() && value.is_some())
    );
}

#[test]
fn value_modes_are_honoured() {
    let fixture = fixture();
    let options = ValueOptions {
        decimal: DecimalMode::String,
        interval: IntervalMode::String,
        ..ValueOptions::default()
    };
    let mut encoder = JsonEncoder::new(options);
    let rows = encode(&mut encoder, &with_primary_key(&fixture.items, "id"));
    let first = rows[0].1.as_ref().expect("value");
    assert_eq!(first["price"], "129.90");
    assert_eq!(first["exact"], "1234567890.123456789");
    assert_eq!(first["span"], "P1DT2H");
    assert_eq!(first["_op"], "c");
    assert!(first["_lsn"].as_u64().is_some());
    assert_eq!(first["_xid"], fixture.xids[0]);
    assert_eq!(first["_before"], Value::Null);
    let update = rows[2].1.as_ref().expect("value");
    assert_eq!(update["_before"]["name"], "Ann");
    assert_eq!(
        rows[0].0.as_ref().expect("key"),
        &serde_json::json!({"id": 1})
    );

    let double = ValueOptions {
        decimal: DecimalMode::Double,
        ..ValueOptions::default()
    };
    let rows = encode(&mut JsonEncoder::new(double), &fixture.items);
    assert_eq!(rows[0].1.as_ref().expect("value")["price"], 129.9);
}

#[test]
fn canal_flat_messages_carry_text_values_and_changed_old_columns() {
    let fixture = fixture();
    let items = with_primary_key(&fixture.items, "id");
    let events = encode(&mut weir::encode::CanalJsonEncoder::default(), &items);
    assert_eq!(events.len(), 4, "one message per row, no tombstones");
    let types: Vec<&str> = events
        .iter()
        .map(|(_, v)| v.as_ref().expect("value")["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["INSERT", "INSERT", "UPDATE", "DELETE"]);

    let insert = events[0].1.as_ref().expect("value");
    assert_eq!(insert["database"], "public", "the schema");
    assert_eq!(insert["table"], "items");
    assert_eq!(insert["pkNames"], serde_json::json!(["id"]));
    assert_eq!(insert["isDdl"], false);
    assert_eq!(insert["old"], Value::Null);
    let data = &insert["data"][0];
    assert_eq!(data["id"], "1");
    assert_eq!(data["price"], "129.90");
    assert_eq!(data["exact"], "1234567890.123456789");
    // The forms Flink's canal-json reads: TIMESTAMP_LTZ with a Z, BYTES as base64,
    // ARRAY as a JSON array.
    assert_eq!(data["at"], "2026-11-21 08:00:00.25Z");
    assert_eq!(data["day"], "2026-11-21");
    assert_eq!(data["span"], "P1DT2H");
    assert_eq!(data["tags"], serde_json::json!(["a", "b c", null]));
    assert_eq!(data["data"], "Af8=");
    assert_eq!(insert["sqlType"]["id"], 4);
    assert_eq!(insert["sqlType"]["price"], 3);
    assert_eq!(insert["sqlType"]["at"], 2014);
    assert_eq!(insert["mysqlType"]["at"], "timestamp(6)");
    assert_eq!(insert["mysqlType"]["id"], "int");

    // `timestamptz_form: utc`: UTC without a zone, the form Paimon's and Flink's
    // TIMESTAMP read; the rest unchanged.
    let utc = encode(
        &mut weir::encode::CanalJsonEncoder::new(weir::encode::TimestamptzForm::Utc),
        &items,
    );
    let utc_data = &utc[0].1.as_ref().expect("value")["data"][0];
    assert_eq!(utc_data["at"], "2026-11-21 08:00:00.25");
    assert_eq!(utc_data["data"], "Af8=");
    assert!(
        insert["es"]
            .as_i64()
            .is_some_and(|es| es > 1_700_000_000_000)
    );
    assert_eq!(
        events[0].0.as_ref().expect("key"),
        &serde_json::json!({"id": "1"})
    );

    // The update's `old` holds exactly the columns it changed, with their old values.
    let update = events[2].1.as_ref().expect("value");
    assert_eq!(
        update["old"],
        serde_json::json!([{"name": "Ann", "qty": "3"}])
    );
    assert_eq!(update["data"][0]["name"], "Anne");
    // The delete's data is the old row.
    let delete = events[3].1.as_ref().expect("value");
    assert_eq!(delete["data"][0]["id"], "2");
    assert_eq!(delete["data"][0]["price"], "-0.01");
    assert_eq!(delete["data"][0]["name"], Value::Null);
}

/// Checks `payload` against a Kafka Connect schema the way Connect's JSON converter
/// reads it: every declared field present, JSON types as the schema types demand,
/// null only where optional.
fn conforms(schema: &Value, payload: &Value, path: &str) {
    if payload.is_null() {
        assert_eq!(schema["optional"], true, "{path}: null but not optional");
        return;
    }
    match schema["type"].as_str().expect("a type") {
        "struct" => {
            let fields = schema["fields"].as_array().expect("fields");
            let object = payload.as_object().expect("an object");
            assert_eq!(fields.len(), object.len(), "{path}: field count");
            for field in fields {
                let name = field["field"].as_str().expect("field name");
                conforms(field, &payload[name], &format!("{path}.{name}"));
            }
        }
        "array" => {
            for (i, item) in payload.as_array().expect("an array").iter().enumerate() {
                conforms(&schema["items"], item, &format!("{path}[{i}]"));
            }
        }
        "int8" | "int16" | "int32" | "int64" => assert!(payload.is_i64(), "{path}: {payload}"),
        "float" | "double" => assert!(payload.is_number(), "{path}: {payload}"),
        "boolean" => assert!(payload.is_boolean(), "{path}: {payload}"),
        "string" => assert!(payload.is_string(), "{path}: {payload}"),
        "bytes" => {
            let text = payload.as_str().expect("base64 text");
            assert!(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .is_ok(),
                "{path}"
            );
        }
        other => panic!("{path}: unknown Connect type {other}"),
    }
}

#[test]
fn debezium_with_schemas_wraps_the_same_payload_in_a_conforming_connect_schema() {
    let fixture = fixture();
    let items = with_primary_key(&fixture.items, "id");
    let plain = encode(
        &mut DebeziumJsonEncoder::new(DebeziumOptions::new("shop", "shopdb")),
        &items,
    );
    let mut options = DebeziumOptions::new("shop", "shopdb");
    options.schemas = true;
    let wrapped = encode(&mut DebeziumJsonEncoder::new(options), &items);
    assert_eq!(plain.len(), wrapped.len());
    for ((plain_key, plain_value), (key, value)) in plain.iter().zip(&wrapped) {
        let key = key.as_ref().expect("key");
        assert_eq!(Some(&key["payload"]), plain_key.as_ref());
        assert_eq!(key["schema"]["name"], "shop.public.items.Key");
        conforms(&key["schema"], &key["payload"], "key");
        match (plain_value, value) {
            (Some(plain_value), Some(value)) => {
                let payload = &value["payload"];
                // ts_ms, ts_us and ts_ns are the encoding time: equal up to that.
                let mut a = plain_value.clone();
                let mut b = payload.clone();
                for field in ["ts_ms", "ts_us", "ts_ns"] {
                    a[field] = Value::Null;
                    b[field] = Value::Null;
                }
                assert_eq!(a, b);
                let schema = &value["schema"];
                assert_eq!(schema["name"], "shop.public.items.Envelope");
                conforms(schema, payload, "value");
            }
            (None, None) => {}
            other => panic!("tombstones differ: {other:?}"),
        }
    }
    let schema = &wrapped[0].1.as_ref().expect("value")["schema"];
    let after = &schema["fields"][1]["fields"];
    let field = |name: &str| {
        after
            .as_array()
            .and_then(|f| f.iter().find(|f| f["field"] == name))
            .cloned()
            .expect("declared")
    };
    assert_eq!(field("id")["optional"], false);
    assert_eq!(
        field("price")["name"],
        "org.apache.kafka.connect.data.Decimal"
    );
    assert_eq!(field("price")["parameters"]["scale"], "2");
    assert_eq!(
        field("exact")["name"],
        "io.debezium.data.VariableScaleDecimal"
    );
    assert_eq!(field("at")["name"], "io.debezium.time.ZonedTimestamp");
    assert_eq!(field("day")["name"], "io.debezium.time.Date");
    assert_eq!(field("span")["name"], "io.debezium.time.MicroDuration");
    assert_eq!(field("tags")["items"]["type"], "string");
    assert_eq!(field("data")["type"], "bytes");
}

#[test]
fn maxwell_row_events_carry_typed_values_and_always_an_old_for_updates() {
    let fixture = fixture();
    let items = with_primary_key(&fixture.items, "id");
    let events = encode(&mut weir::encode::MaxwellJsonEncoder::default(), &items);
    assert_eq!(events.len(), 4, "one message per row, no tombstones");
    let types: Vec<&str> = events
        .iter()
        .map(|(_, v)| v.as_ref().expect("value")["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["insert", "insert", "update", "delete"]);

    let insert = events[0].1.as_ref().expect("value");
    assert_eq!(insert["database"], "public", "the schema");
    assert_eq!(insert["table"], "items");
    assert!(insert.get("old").is_none(), "only updates have old");
    assert_eq!(insert["xid"], fixture.xids[0]);
    assert_eq!(insert["primary_key_columns"], serde_json::json!(["id"]));
    assert!(
        insert["ts"]
            .as_i64()
            .is_some_and(|ts| (1_700_000_000..4_000_000_000).contains(&ts)),
        "seconds: {}",
        insert["ts"]
    );
    let data = &insert["data"];
    assert_eq!(data["id"], 1, "integers are numbers");
    assert_eq!(data["price"].as_f64(), Some(129.9), "decimals are numbers");
    assert_eq!(data["at"], "2026-11-21 08:00:00.25Z");
    assert_eq!(data["tags"], serde_json::json!(["a", "b c", null]));
    assert_eq!(
        events[0].0.as_ref().expect("key"),
        &serde_json::json!({"database": "public", "table": "items", "pk.id": 1})
    );
    let update = events[2].1.as_ref().expect("value");
    assert_eq!(update["data"]["name"], "Anne");
    assert!(update["old"].is_object(), "{update}");
    let delete = events[3].1.as_ref().expect("value");
    assert_eq!(delete["data"]["id"], 2);

    // A table without a primary key names none.
    let keyless = encode(
        &mut weir::encode::MaxwellJsonEncoder::default(),
        &fixture.items,
    );
    let keyless = keyless[0].1.as_ref().expect("value");
    assert!(keyless.get("primary_key_columns").is_none(), "{keyless}");
}

#[test]
fn shareplex_messages_follow_dtss_field_list_with_updates_in_two_halves() {
    let fixture = fixture();
    let items = with_primary_key(&fixture.items, "id");
    let events = encode(&mut weir::encode::SharePlexJsonEncoder::default(), &items);
    let ops: Vec<&str> = events
        .iter()
        .map(|(_, v)| {
            v.as_ref().expect("value")["meta"]["op"]
                .as_str()
                .expect("op")
        })
        .collect();
    assert_eq!(
        ops,
        [
            "INSERT",
            "INSERT",
            "UPDATE BEFORE",
            "UPDATE AFTER",
            "DELETE"
        ]
    );
    let insert = events[0].1.as_ref().expect("value");
    let meta = &insert["meta"];
    for field in [
        "time", "userid", "op", "scn", "rowid", "trans", "seq", "size", "table", "idx", "posttime",
    ] {
        assert!(meta.get(field).is_some(), "meta.{field}: {meta}");
    }
    assert_eq!(meta["table"], "public.items");
    assert_eq!(meta["trans"], fixture.xids[0].to_string());
    assert_eq!(meta["idx"], format!("{}/0", meta["seq"]));
    let time = meta["time"].as_str().expect("time");
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok()
            && time.ends_with('Z')
            && time.len() == 20,
        "yyyy-MM-ddTHH:mm:ssZ: {time}"
    );
    assert_eq!(insert["data"]["id"], "1", "values are text");
    assert_eq!(insert["data"]["at"], "2026-11-21 08:00:00.25Z");
    assert_eq!(
        events[0].0.as_ref().expect("key"),
        &serde_json::json!({"id": "1"})
    );
    let (before, after) = (
        events[2].1.as_ref().expect("value"),
        events[3].1.as_ref().expect("value"),
    );
    assert_eq!(after["data"]["name"], "Anne");
    assert_eq!(before["data"]["id"], after["data"]["id"]);
    assert_eq!(events[2].0, events[3].0, "both halves under one key");
}

#[test]
fn oms_default_json_has_omss_fields_and_one_struct_per_side() {
    let fixture = fixture();
    let items = with_primary_key(&fixture.items, "id");
    let events = encode(
        &mut weir::encode::OmsJsonEncoder::new("shopdb", weir::encode::TimestamptzForm::default()),
        &items,
    );
    let types: Vec<&str> = events
        .iter()
        .map(|(_, v)| {
            v.as_ref().expect("value")["recordType"]
                .as_str()
                .expect("type")
        })
        .collect();
    assert_eq!(types, ["INSERT", "INSERT", "UPDATE", "DELETE"]);
    let insert = events[0].1.as_ref().expect("value");
    let meta = &insert["allMetaData"];
    for field in [
        "checkpoint",
        "record_primary_key",
        "record_primary_value",
        "source_identity",
        "dbType",
        "storeDataSequence",
        "table_name",
        "db",
        "timestamp",
        "uniqueId",
        "transId",
        "clusterId",
        "ddlType",
    ] {
        assert!(meta.get(field).is_some(), "allMetaData.{field}: {meta}");
    }
    assert_eq!(meta["db"], "shopdb.public");
    assert_eq!(meta["table_name"], "items");
    assert_eq!(meta["dbType"], "POSTGRESQL");
    assert_eq!(meta["record_primary_key"], "id");
    assert_eq!(meta["record_primary_value"], "1");
    assert!(meta["storeDataSequence"].is_u64(), "a number: {meta}");
    assert!(
        insert["prevStruct"].is_null(),
        "an insert has only postStruct"
    );
    assert_eq!(insert["postStruct"]["at"], "2026-11-21 08:00:00.25Z");
    let update = events[2].1.as_ref().expect("value");
    assert!(update["prevStruct"].is_object() && update["postStruct"].is_object());
    let delete = events[3].1.as_ref().expect("value");
    assert!(
        delete["postStruct"].is_null(),
        "a delete has only prevStruct"
    );
    assert_eq!(delete["allMetaData"]["record_primary_value"], "2");
}
