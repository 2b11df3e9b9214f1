//! weir's partitioner against an independent implementation of Kafka's default
//! partitioner: kafka-python's (`scripts/setup.sh` installs it).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field};
use weir::contract::TopicTemplate;
use weir::encode::{Encoder, JsonEncoder, Messages, SnapshotMarks};
use weir::route::{PartitionPolicy, Router, partition_for_key};
use weir_tests::{kafka_python_partitions, orders_batch};

fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..500)
        .map(|id| format!("{{\"id\":{id}}}").into_bytes())
        .collect();
    keys.extend(
        (0..200u32).map(|n| n.to_le_bytes()[..usize::try_from(n % 5).unwrap_or(0)].to_vec()),
    );
    keys.extend((0..200u32).map(|n| {
        (0..n % 37)
            .map(|i| u8::try_from((i * 31 + n) % 256).unwrap_or(0))
            .collect()
    }));
    keys.push("ünïcødé 🦀".as_bytes().to_vec());
    keys
}

#[test]
fn routed_keys_land_where_kafka_python_puts_them() {
    let batch = orders_batch(500);
    let mut messages = Messages::default();
    JsonEncoder::default()
        .encode(&batch, SnapshotMarks::default(), &mut messages)
        .expect("encodes");
    let router = Router::new(
        "shop",
        TopicTemplate::new("{database}.{schema}.{table}").expect("template"),
        HashMap::new(),
        PartitionPolicy::PrimaryKey,
    );
    let destinations = router
        .route(&batch, &messages, &mut |_| Ok(12))
        .expect("routes");
    let keys: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| messages.key(m).expect("key").to_vec())
        .collect();
    assert_eq!(String::from_utf8_lossy(&keys[7]), "{\"id\":7}");
    let theirs = kafka_python_partitions(&keys, 12);
    let ours: Vec<i32> = destinations
        .iter()
        .map(|d| d.partition.expect("keyed"))
        .collect();
    assert_eq!(ours, theirs);
    assert!(
        destinations
            .iter()
            .all(|d| &*d.topic == "shop.public.orders")
    );

    // A table-wide policy puts the whole table on one partition.
    let by_table = Router::new(
        "shop",
        TopicTemplate::new("t").expect("template"),
        HashMap::new(),
        PartitionPolicy::Table,
    );
    let destinations = by_table
        .route(&batch, &messages, &mut |_| Ok(12))
        .expect("routes");
    let expected = kafka_python_partitions(&[b"shop.public.orders".to_vec()], 12)[0];
    assert!(destinations.iter().all(|d| d.partition == Some(expected)));
}

#[test]
fn plugin_routing_columns_win() {
    let batch = orders_batch(4);
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new("_topic", DataType::Utf8, true)));
    fields.push(Arc::new(Field::new("_partition", DataType::Int32, true)));
    let schema =
        arrow::datatypes::Schema::new_with_metadata(fields, batch.schema().metadata().clone());
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![
        Some("vip orders"),
        None,
        Some("x"),
        None,
    ])));
    columns.push(Arc::new(Int32Array::from(vec![
        Some(3),
        None,
        None,
        Some(0),
    ])));
    let routed = RecordBatch::try_new(Arc::new(schema), columns).expect("batch");
    let mut messages = Messages::default();
    JsonEncoder::default()
        .encode(&routed, SnapshotMarks::default(), &mut messages)
        .expect("encodes");
    let value: serde_json::Value = serde_json::from_slice(
        messages
            .value(messages.iter().next().expect("one"))
            .expect("value"),
    )
    .expect("json");
    assert!(
        value.get("_topic").is_none(),
        "routing columns are not data"
    );
    let router = Router::new(
        "shop",
        TopicTemplate::new("{table}").expect("template"),
        HashMap::new(),
        PartitionPolicy::PrimaryKey,
    );
    let destinations = router
        .route(&routed, &messages, &mut |_| Ok(8))
        .expect("routes");
    let topics: Vec<&str> = destinations.iter().map(|d| &*d.topic).collect();
    assert_eq!(topics, ["vip_orders", "orders", "x", "orders"]);
    assert_eq!(destinations[0].partition, Some(3));
    assert_eq!(destinations[3].partition, Some(0));
    assert_eq!(
        destinations[1].partition,
        Some(partition_for_key(
            messages
                .key(messages.iter().nth(1).expect("two"))
                .expect("key"),
            8
        ))
    );
}

#[test]
fn partitions_match_kafka_python() {
    let keys = keys();
    for partitions in [1u32, 3, 12, 100] {
        let theirs = kafka_python_partitions(&keys, partitions);
        let ours: Vec<i32> = keys
            .iter()
            .map(|key| partition_for_key(key, partitions))
            .collect();
        assert_eq!(ours, theirs, "{partitions} partitions");
    }
}
