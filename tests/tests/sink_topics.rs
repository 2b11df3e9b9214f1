//! Topic checks against a broker process: existing topics report their partition
//! count, missing ones are refused (not auto-created with the broker's default
//! count) unless creation is configured.
//!
//! Creation itself (Kafka's CreateTopics request) is not exercised here: librdkafka's
//! mock cluster, the test broker, does not implement that request.

use weir::sink::admin::{TopicAdmin, TopicError};
use weir_tests::{Broker, unique_name};

#[test]
fn existing_topics_are_found_and_missing_ones_refused() {
    let broker = Broker::start(1).expect("broker");
    let mut admin = TopicAdmin::new(broker.bootstrap_servers(), &[], None).expect("admin");
    let absent = unique_name("absent");
    match admin.partitions(&absent) {
        Err(TopicError::Missing(topic)) => assert_eq!(topic, absent),
        other => panic!("expected Missing, got {other:?}"),
    }
    // Looking it up did not create it behind weir's back.
    match admin.partitions(&absent) {
        Err(TopicError::Missing(_)) => {}
        other => panic!("expected Missing again, got {other:?}"),
    }
    let existing = unique_name("existing");
    broker.create_topic(&existing, 4).expect("topic");
    assert_eq!(admin.partitions(&existing).expect("found"), 4);
}
