//! The `avro` encoder on real ChangeBatches of many PostgreSQL types, decoded by
//! fastavro with the schemas it fetches from the test registry: every value checked
//! against what PostgreSQL stored, in Debezium's Avro conventions.

use std::collections::HashMap;

use arrow::record_batch::RecordBatch;
use serde_json::{Value, json};
use weir::contract::{Edge, TopicNames, TopicTemplate};
use weir::encode::{
    AvroEncoder, DebeziumOptions, DecimalMode, Encoder, IntervalMode, Messages, SchemaRegistry,
    SnapshotMarks, ValueOptions,
};
use weir_tests::{captured_batches, fastavro_decode, table_batch, with_primary_key};

const SETUP: &str = "
    CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), exact numeric,
                        qty smallint, big bigint, ratio float8, small real, ok boolean,
                        at timestamptz, local timestamp, day date, clock time,
                        span interval, tags text[], counts int4[], data bytea, doc jsonb,
                        uid uuid, addr inet, body text);
    ALTER TABLE items REPLICA IDENTITY FULL;
    ALTER TABLE items ALTER COLUMN body SET STORAGE EXTERNAL;
";

const CHANGES: [&str; 3] = [
    "INSERT INTO items VALUES
        (1, 'Ann', 129.90, 1234567890.123456789, 3, 9007199254740993, 0.25, 1.5, true,
         '2026-11-21 08:00:00.25+00', '2026-11-21 08:00:00.000001', '2026-11-21', '13:14:15.5',
         '1 day 02:00:00', '{a,\"b c\",NULL}', '{1,NULL,3}', '\\x01ff', '{\"k\": [1, 2]}',
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10.0.0.1/8', repeat('x', 10000)),
        (2, NULL, -0.01, 'NaN', NULL, NULL, NULL, NULL, NULL, 'infinity', NULL, NULL, NULL,
         NULL, '{}', NULL, NULL, NULL, NULL, NULL, NULL)",
    "UPDATE items SET name = 'Anne' WHERE id = 1",
    "DELETE FROM items WHERE id = 2",
];

fn decode(
    registry: &weir_tests::SchemaRegistry,
    values: ValueOptions,
    batch: &RecordBatch,
) -> Vec<Value> {
    decode_marked(registry, values, batch, SnapshotMarks::default())
}

fn decode_marked(
    registry: &weir_tests::SchemaRegistry,
    values: ValueOptions,
    batch: &RecordBatch,
    marks: SnapshotMarks,
) -> Vec<Value> {
    let mut options = DebeziumOptions::new("shop", "shopdb");
    options.values = values;
    let topics = TopicNames::new(
        "shopdb",
        TopicTemplate::new("{database}.{schema}.{table}").expect("template"),
        HashMap::new(),
    );
    let client = SchemaRegistry::new(registry.url()).expect("registry URL");
    let mut encoder = AvroEncoder::new(options, topics, client);
    let mut messages = Messages::default();
    encoder
        .encode(batch, marks, &mut messages)
        .expect("encodes");
    let framed: Vec<_> = messages
        .iter()
        .map(|m| {
            (
                messages.key(m).map(<[u8]>::to_vec),
                messages.value(m).map(<[u8]>::to_vec),
            )
        })
        .collect();
    fastavro_decode(registry.url(), &framed).expect("fastavro decodes")
}

#[test]
fn every_type_reads_back_through_fastavro() {
    let batches = captured_batches(SETUP, &CHANGES).expect("changes captured");
    let items = with_primary_key(&table_batch(&batches, "items").expect("items"), "id");
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let decoded = decode(&registry, ValueOptions::default(), &items);
    // 2 inserts, 1 update, 1 delete and its tombstone.
    assert_eq!(decoded.len(), 5);
    let ann = &decoded[0]["value"]["datum"]["after"];
    assert_eq!(decoded[0]["key"]["datum"], json!({"id": 1}));
    assert_eq!(ann["name"], "Ann");
    assert_eq!(ann["price"], json!({"decimal": "129.90"}));
    // VariableScaleDecimal: scale 9, unscaled 1234567890123456789.
    assert_eq!(ann["exact"]["scale"], 9);
    let unscaled = u64::from_str_radix(ann["exact"]["value"]["bytes"].as_str().expect("hex"), 16);
    assert_eq!(unscaled, Ok(1_234_567_890_123_456_789));
    assert_eq!(ann["qty"], 3);
    assert_eq!(ann["big"], 9_007_199_254_740_993_i64);
    assert_eq!(ann["ratio"], 0.25);
    assert_eq!(ann["small"], 1.5);
    assert_eq!(ann["ok"], true);
    assert_eq!(ann["at"], "2026-11-21T08:00:00.250000Z");
    assert_eq!(ann["local"], 1_795_248_000_000_001_i64);
    assert_eq!(ann["day"], 20_778);
    assert_eq!(ann["clock"], 47_655_500_000_i64);
    assert_eq!(ann["span"], 93_600_000_000_i64);
    assert_eq!(ann["tags"], json!(["a", "b c", null]));
    assert_eq!(ann["counts"], json!([1, null, 3]));
    assert_eq!(ann["data"], json!({"bytes": "01ff"}));
    assert_eq!(ann["doc"], "{\"k\": [1, 2]}");
    assert_eq!(ann["uid"], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(ann["addr"], "10.0.0.1/8");
    assert_eq!(ann["body"].as_str().map(str::len), Some(10_000));

    let second = &decoded[1]["value"]["datum"]["after"];
    assert_eq!(
        second["exact"],
        Value::Null,
        "NaN has no VariableScaleDecimal form"
    );
    assert_eq!(second["price"], json!({"decimal": "-0.01"}));
    assert_eq!(second["at"], "infinity");
    assert_eq!(second["tags"], json!([]));
    assert_eq!(second["name"], Value::Null);

    // The update: full old image (REPLICA IDENTITY FULL); the body it left unchanged
    // in TOAST is taken from the old image, as Debezium does.
    let update = &decoded[2]["value"]["datum"];
    assert_eq!(update["op"], "u");
    assert_eq!(update["before"]["name"], "Ann");
    assert_eq!(update["after"]["name"], "Anne");
    assert_eq!(update["after"]["body"].as_str().map(str::len), Some(10_000));

    let delete = &decoded[3]["value"]["datum"];
    assert_eq!(delete["op"], "d");
    assert_eq!(delete["before"]["id"], 2);
    assert_eq!(delete["after"], Value::Null);
    assert_eq!(decoded[4]["value"], Value::Null, "tombstone");
    assert_eq!(decoded[4]["key"]["datum"], json!({"id": 2}));
}

#[test]
fn string_and_double_modes() {
    let batches = captured_batches(SETUP, &CHANGES[..1]).expect("changes captured");
    let items = with_primary_key(&table_batch(&batches, "items").expect("items"), "id");
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let values = ValueOptions {
        decimal: DecimalMode::String,
        interval: IntervalMode::String,
        ..ValueOptions::default()
    };
    let decoded = decode(&registry, values, &items);
    let ann = &decoded[0]["value"]["datum"]["after"];
    assert_eq!(ann["price"], "129.90");
    assert_eq!(ann["exact"], "1234567890.123456789");
    assert_eq!(ann["span"], "P1DT2H");
    assert_eq!(decoded[1]["value"]["datum"]["after"]["exact"], "NaN");

    let values = ValueOptions {
        decimal: DecimalMode::Double,
        ..ValueOptions::default()
    };
    let decoded = decode(&registry, values, &items);
    let ann = &decoded[0]["value"]["datum"]["after"];
    assert_eq!(ann["price"], 129.9);
    assert_eq!(ann["exact"], 1_234_567_890.123_456_8);
    assert_eq!(
        decoded[1]["value"]["datum"]["after"]["exact"],
        json!({"float": "NaN"})
    );
}

#[test]
fn snapshot_reads_carry_debeziums_edge_markers() {
    let changes = ["INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')"];
    let batches = captured_batches(SETUP, &changes).expect("changes captured");
    let items = with_primary_key(&table_batch(&batches, "items").expect("items"), "id");
    let reads = weir_tests::with_op(&items, b'r');
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let markers = |marks| {
        decode_marked(&registry, ValueOptions::default(), &reads, marks)
            .iter()
            .map(|m| m["value"]["datum"]["source"]["snapshot"].clone())
            .collect::<Vec<_>>()
    };
    let edges = SnapshotMarks {
        incremental: false,
        first: Some(Edge::Snapshot),
        last: Some(Edge::Table),
    };
    assert_eq!(
        markers(edges),
        vec![
            json!("first"),
            json!("true"),
            json!("last_in_data_collection")
        ]
    );
    assert_eq!(
        markers(SnapshotMarks::INCREMENTAL),
        vec![json!("incremental"); 3]
    );
}

#[test]
fn values_left_unchanged_in_toast_get_debeziums_typed_placeholders() {
    let setup =
        "CREATE TABLE toasty (id int PRIMARY KEY, n int, blob bytea, tags text[], counts int[]);
        ALTER TABLE toasty ALTER COLUMN blob SET STORAGE EXTERNAL,
            ALTER COLUMN tags SET STORAGE EXTERNAL, ALTER COLUMN counts SET STORAGE EXTERNAL;";
    let changes = [
        "INSERT INTO toasty SELECT 1, 0, decode(string_agg(md5(g::text), ''), 'hex'),
            array_agg(md5(g::text)), array_agg(g) FROM generate_series(1, 3000) g",
        "UPDATE toasty SET n = 1 WHERE id = 1",
    ];
    let batches = captured_batches(setup, &changes).expect("changes captured");
    let toasty = with_primary_key(&table_batch(&batches, "toasty").expect("toasty"), "id");
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let decoded = decode(&registry, ValueOptions::default(), &toasty);
    let after = &decoded[1]["value"]["datum"]["after"];
    let placeholder = "__debezium_unavailable_value";
    assert_eq!(after["n"], 1);
    let hex: String = placeholder.bytes().map(|b| format!("{b:02x}")).collect();
    assert_eq!(after["blob"], json!({"bytes": hex}));
    assert_eq!(after["tags"], json!([placeholder]));
    assert_eq!(
        after["counts"],
        json!(placeholder.bytes().collect::<Vec<u8>>())
    );
}

#[test]
fn a_primary_key_change_is_a_delete_a_tombstone_and_a_create() {
    let changes = [
        "INSERT INTO items (id, name) VALUES (1, 'Ann')",
        "UPDATE items SET id = 7, name = 'Anne' WHERE id = 1",
    ];
    let batches = captured_batches(SETUP, &changes).expect("changes captured");
    let items = with_primary_key(&table_batch(&batches, "items").expect("items"), "id");
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let decoded = decode(&registry, ValueOptions::default(), &items);
    // The insert, then the update as Debezium writes a key change.
    assert_eq!(decoded.len(), 4, "{decoded:?}");
    let deleted = &decoded[1];
    assert_eq!(deleted["key"]["datum"], json!({"id": 1}));
    assert_eq!(deleted["value"]["datum"]["op"], "d");
    assert_eq!(deleted["value"]["datum"]["before"]["name"], "Ann");
    assert_eq!(deleted["value"]["datum"]["after"], Value::Null);
    assert_eq!(decoded[2]["key"]["datum"], json!({"id": 1}));
    assert_eq!(decoded[2]["value"], Value::Null, "tombstone of the old key");
    let created = &decoded[3];
    assert_eq!(created["key"]["datum"], json!({"id": 7}));
    assert_eq!(created["value"]["datum"]["op"], "c");
    assert_eq!(created["value"]["datum"]["before"], Value::Null);
    assert_eq!(created["value"]["datum"]["after"]["name"], "Anne");
}

#[test]
fn not_null_columns_are_required_and_a_key_only_old_image_holds_zeros() {
    let setup =
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL, note text)";
    let changes = [
        "INSERT INTO items VALUES (1, 'Ann', 3, NULL)",
        "DELETE FROM items WHERE id = 1",
    ];
    let batches = captured_batches(setup, &changes).expect("changes captured");
    let items = weir_tests::with_not_null(
        &with_primary_key(&table_batch(&batches, "items").expect("items"), "id"),
        &["id", "name", "qty"],
    );
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let decoded = decode(&registry, ValueOptions::default(), &items);
    assert_eq!(decoded.len(), 3, "insert, delete, tombstone: {decoded:?}");
    let inserted = &decoded[0]["value"]["datum"]["after"];
    assert_eq!(inserted["name"], "Ann");
    assert_eq!(inserted["qty"], 3);
    // The default replica identity sends only the key: Debezium's zeros stand in
    // for the other required columns, the optional ones are null.
    let deleted = &decoded[1]["value"]["datum"]["before"];
    assert_eq!(
        *deleted,
        json!({"id": 1, "name": "", "qty": 0, "note": null})
    );
    let schema: Value = serde_json::from_str(
        &registry
            .latest_schema("shopdb.public.items-value")
            .expect("value schema registered"),
    )
    .expect("schema JSON");
    let value_fields = &schema["fields"][0]["type"][1]["fields"];
    let types: Vec<(String, Value)> = value_fields
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default().to_owned(),
                f["type"].clone(),
            )
        })
        .collect();
    assert_eq!(types[1], ("name".to_owned(), json!("string")), "{types:?}");
    assert_eq!(types[2], ("qty".to_owned(), json!("int")), "{types:?}");
    assert_eq!(
        types[3],
        ("note".to_owned(), json!(["null", "string"])),
        "{types:?}"
    );
}

#[test]
fn a_nan_keeps_a_numeric_p_s_column_decimal() {
    // The NaN is null in the Arrow column, which stays Decimal128: one batch, one
    // registered schema, under the declared `decimal`.
    let setup = "CREATE TABLE items (id int PRIMARY KEY, price numeric(10,2))";
    let changes = ["INSERT INTO items VALUES (1, 129.9), (2, 'NaN'), (3, -0.5)"];
    let batches = captured_batches(setup, &changes).expect("changes captured");
    let widened: Vec<&RecordBatch> = batches
        .iter()
        .filter(|b| b.schema().metadata().get("weir.table").map(String::as_str) == Some("items"))
        .collect();
    assert_eq!(widened.len(), 1, "the NaN does not cut the batch");
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let mut prices = Vec::new();
    for batch in widened {
        let batch = with_primary_key(batch, "id");
        for message in decode(&registry, ValueOptions::default(), &batch) {
            prices.push(message["value"]["datum"]["after"]["price"].clone());
        }
    }
    assert_eq!(
        prices,
        [
            json!({"decimal": "129.90"}),
            Value::Null,
            json!({"decimal": "-0.50"})
        ]
    );
    let versions = registry
        .latest_schema("shopdb.public.items-value")
        .expect("registered");
    assert!(
        versions.contains("\"logicalType\":\"decimal\""),
        "{versions}"
    );
}

#[test]
fn points_money_bits_and_enums_read_back_as_debeziums_types() {
    let setup = "CREATE TYPE mood AS ENUM ('sad', 'ok');
                 CREATE TABLE items (id int PRIMARY KEY, at point, cash money, one bit(1), nine bit(9), feel mood)";
    let changes = ["INSERT INTO items VALUES (1, '(1.5,-2)', '-1234.5', B'1', B'100000001', 'ok')"];
    let batches = captured_batches(setup, &changes).expect("changes captured");
    let items = with_primary_key(&table_batch(&batches, "items").expect("items"), "id");
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let decoded = decode(&registry, ValueOptions::default(), &items);
    let after = &decoded[0]["value"]["datum"]["after"];
    assert_eq!(after["at"]["x"], 1.5);
    assert_eq!(after["at"]["y"], -2.0);
    // WKB: little-endian, type 1, then x and y as doubles.
    let mut wkb = vec![1u8, 1, 0, 0, 0];
    wkb.extend(1.5f64.to_le_bytes());
    wkb.extend((-2.0f64).to_le_bytes());
    let hex: String = wkb.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(after["at"]["wkb"], json!({"bytes": hex}));
    assert_eq!(after["cash"], json!({"decimal": "-1234.50"}));
    assert_eq!(after["one"], true);
    assert_eq!(after["nine"], json!({"bytes": "0101"}));
    assert_eq!(after["feel"], "ok");
}
