//! Topic checks and creation against Apache Kafka: existing topics report their
//! partition count, missing ones are refused (not auto-created with the broker's
//! default count, though the broker allows auto-creation) unless creation is
//! configured, and created ones get the partitions and replication factor asked for.

use weir::produce::admin::{TopicAdmin, TopicError, TopicSettings};
use weir_tests::{KafkaCluster, unique_name};

#[test]
fn existing_topics_are_found_and_missing_ones_refused() {
    let broker = KafkaCluster::start(1).expect("broker");
    let mut admin = TopicAdmin::new(broker.bootstrap_servers(), &[], None).expect("admin");
    let absent = unique_name("absent");
    match admin.partitions(&absent) {
        Err(TopicError::Missing(topic)) => assert_eq!(topic, absent),
        other => panic!("expected Missing, got {other:?}"),
    }
    // Looking it up did not create it behind weir's back (the broker would).
    match admin.partitions(&absent) {
        Err(TopicError::Missing(_)) => {}
        other => panic!("expected Missing again, got {other:?}"),
    }
    let existing = unique_name("existing");
    broker.create_topic(&existing, 4, 1, &[]).expect("topic");
    assert_eq!(admin.partitions(&existing).expect("found"), 4);
}

#[test]
fn missing_topics_are_created_as_configured_and_an_existing_one_is_left_alone() {
    let broker = KafkaCluster::start(3).expect("brokers");
    let settings = TopicSettings {
        partitions: 6,
        replication_factor: 3,
    };
    let mut admin =
        TopicAdmin::new(broker.bootstrap_servers(), &[], Some(settings)).expect("admin");
    let created = unique_name("created");
    assert_eq!(admin.partitions(&created).expect("created"), 6);
    let partitions = broker.partitions(&created).expect("metadata");
    assert_eq!(partitions.len(), 6);
    assert!(
        partitions.iter().all(|p| p.replicas.len() == 3),
        "{partitions:?}"
    );

    let existing = unique_name("existing");
    broker.create_topic(&existing, 2, 1, &[]).expect("topic");
    assert_eq!(
        admin.partitions(&existing).expect("found"),
        2,
        "not recreated"
    );

    // The state topic: one partition, compacted, whatever the data topics get.
    let state = unique_name("state");
    admin.ensure_state_topic(&state).expect("state topic");
    assert_eq!(broker.partitions(&state).expect("metadata").len(), 1);
    let configs = broker.topic_configs(&state).expect("configs");
    assert!(
        configs.contains(&("cleanup.policy".to_owned(), "compact".to_owned())),
        "{configs:?}"
    );

    // More replicas than brokers: Kafka refuses, and weir says so.
    let mut too_wide = TopicAdmin::new(
        broker.bootstrap_servers(),
        &[],
        Some(TopicSettings {
            partitions: 1,
            replication_factor: 5,
        }),
    )
    .expect("admin");
    let error = too_wide
        .partitions(&unique_name("wide"))
        .expect_err("5 replicas on 3 brokers");
    assert!(error.to_string().contains("replication"), "{error}");
}
