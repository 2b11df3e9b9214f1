//! The producer and the checkpoint tracker against a real broker process: the flush
//! LSN reaches a transaction's end only after Kafka acknowledged all its messages;
//! with the broker down it waits, and after the broker returns every message arrives
//! exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{RecordBatch, UInt64Array};
use weir::Lsn;
use weir::checkpoint::CheckpointTracker;
use weir::contract::TopicTemplate;
use weir::encode::{Encoder, JsonEncoder, Messages, SnapshotMarks};
use weir::produce::{KafkaProducer, ProducerOptions};
use weir::route::{PartitionPolicy, Router};
use weir::source::CommittedTransaction;
use weir_tests::{KafkaCluster, orders_batch, read_topic};

const PARTITIONS: u32 = 3;

/// The `orders` batch as one transaction committed at `commit_lsn`.
fn transaction(rows: usize, commit_lsn: u64) -> RecordBatch {
    let batch = orders_batch(rows);
    let mut columns = batch.columns().to_vec();
    columns[2] = Arc::new(UInt64Array::from(vec![commit_lsn; rows]));
    RecordBatch::try_new(batch.schema(), columns).expect("batch")
}

fn commit(commit_lsn: u64, rows: u64) -> CommittedTransaction {
    CommittedTransaction {
        xid: 7,
        commit_lsn: Lsn(commit_lsn),
        end_lsn: Lsn(commit_lsn + 0x28),
        rows,
    }
}

fn send(producer: &KafkaProducer, batch: &RecordBatch) -> usize {
    let mut messages = Messages::default();
    JsonEncoder::default()
        .encode(batch, SnapshotMarks::default(), &mut messages)
        .expect("encodes");
    let router = Router::new(
        "shop",
        TopicTemplate::new("{table}").expect("template"),
        HashMap::new(),
        PartitionPolicy::PrimaryKey,
    );
    let destinations = router
        .route(batch, &messages, &mut |_| Ok(PARTITIONS))
        .expect("routes");
    producer
        .send(batch, &messages, &destinations)
        .expect("queued");
    messages.len()
}

fn wait_for(tracker: &CheckpointTracker, lsn: Lsn, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if tracker.flushed() >= lsn {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn flush_lsn_follows_acknowledgements_through_a_broker_outage() {
    let mut broker = KafkaCluster::start(1).expect("broker");
    broker
        .create_topic("orders", PARTITIONS, 1, &[])
        .expect("topic");
    let tracker = Arc::new(CheckpointTracker::new(Lsn(0x100)));
    let producer = KafkaProducer::new(
        &ProducerOptions::new(broker.bootstrap_servers()),
        Arc::clone(&tracker),
    )
    .expect("producer");

    // One transaction: confirmed once acknowledged, and not before its commit marker.
    let sent = send(&producer, &transaction(100, 0x9000));
    assert_eq!(sent, 100);
    producer
        .flush(Duration::from_secs(30))
        .expect("acknowledged");
    assert_eq!(tracker.flushed(), Lsn(0x100), "no commit marker yet");
    tracker.committed(&commit(0x9000, 100)).expect("in order");
    assert_eq!(tracker.flushed(), Lsn(0x9028));

    // The broker goes away: the next transaction is queued but not acknowledged.
    broker.kill(1).expect("down");
    send(&producer, &transaction(100, 0xA000));
    tracker.committed(&commit(0xA000, 100)).expect("in order");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        tracker.flushed(),
        Lsn(0x9028),
        "nothing unacknowledged is confirmed"
    );
    assert!(
        tracker.error().is_none(),
        "the producer waits, it does not give up"
    );
    assert!(producer.in_flight() > 0);

    // Back again: delivered, confirmed, and exactly once.
    broker.start_node(1).expect("up");
    assert!(
        wait_for(&tracker, Lsn(0xA028), Duration::from_secs(60)),
        "flushed {}",
        tracker.flushed()
    );
    let records = read_topic(
        broker.bootstrap_servers(),
        "orders",
        Duration::from_secs(30),
    )
    .expect("read");
    assert_eq!(records.len(), 200);
    let second: Vec<_> = records
        .iter()
        .filter(|r| {
            let value: serde_json::Value =
                serde_json::from_str(&r.payload_text().expect("payload")).expect("json");
            value["_commit_lsn"] == 0xA000
        })
        .collect();
    assert_eq!(second.len(), 100, "no duplicates after the retry");
    let record = &records[0];
    let header = |name: &str| record.header_text(name);
    assert!(header("weir.lsn").is_some_and(|lsn| lsn.contains('/')));
    assert_eq!(header("weir.xid").as_deref(), Some("7"));
    assert!(header("weir.op").is_some_and(|op| ["c", "u", "d"].contains(&op.as_str())));
    // Each record sits where the router (Kafka's murmur2 of the key) put it.
    for record in &records {
        let key = record.key.as_deref().expect("keyed");
        assert_eq!(
            record.partition,
            weir::route::partition_for_key(key, PARTITIONS)
        );
    }
}
