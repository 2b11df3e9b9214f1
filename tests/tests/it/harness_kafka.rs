//! The Apache Kafka cluster of the harness: it starts, serves, survives stop, kill -9
//! and restart with its data, speaks SASL and TLS, enforces ACLs, and leaves nothing
//! behind.

use std::time::Duration;

use weir_tests::{
    KafkaCluster, SaslMechanism, kcat_read_with, produce, read_topic, read_topic_with,
};

const READ: Duration = Duration::from_secs(30);

fn pairs(n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("k{i}"), format!("v{i}"))).collect()
}

fn produce_pairs(bootstrap: &str, topic: &str, pairs: &[(String, String)]) {
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    produce(bootstrap, topic, &borrowed, READ).expect("produced");
}

#[test]
fn a_single_node_keeps_its_data_through_stop_kill_and_restart() {
    let mut cluster = KafkaCluster::start(1).expect("cluster");
    eprintln!("one node started in {:?}", cluster.started_in());
    let dir_pid = cluster.pid(1).expect("running");
    cluster
        .create_topic("events", 3, 1, &[("cleanup.policy", "compact")])
        .expect("topic");
    let configs = cluster.topic_configs("events").expect("configs");
    assert!(
        configs.contains(&("cleanup.policy".to_owned(), "compact".to_owned())),
        "{configs:?}"
    );
    assert_eq!(cluster.partitions("events").expect("partitions").len(), 3);
    produce_pairs(cluster.bootstrap_servers(), "events", &pairs(100));

    let stopped = cluster.stop(1).expect("controlled shutdown");
    eprintln!("controlled shutdown took {stopped:?}");
    assert!(cluster.pid(1).is_none());
    let back = cluster.start_node(1).expect("started again");
    eprintln!("restart on the same log dir took {back:?}");
    assert_eq!(
        read_topic(cluster.bootstrap_servers(), "events", READ)
            .expect("read")
            .len(),
        100
    );

    cluster.kill(1).expect("kill -9");
    cluster.start_node(1).expect("started after kill -9");
    produce_pairs(cluster.bootstrap_servers(), "events", &pairs(10));
    assert_eq!(
        read_topic(cluster.bootstrap_servers(), "events", READ)
            .expect("read")
            .len(),
        110
    );
    assert_ne!(cluster.pid(1), Some(dir_pid));
}

#[test]
fn dropping_a_cluster_leaves_no_process_and_no_directory() {
    let cluster = KafkaCluster::start(1).expect("cluster");
    let pid = cluster.pid(1).expect("running");
    let dirs_before = kafka_dirs();
    drop(cluster);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "broker {pid} still runs"
    );
    let dirs_after = kafka_dirs();
    assert!(
        dirs_after.len() < dirs_before.len() || dirs_before.is_empty(),
        "{dirs_after:?}"
    );
}

#[test]
fn a_panicking_test_still_takes_its_cluster_down() {
    let pid = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(|| {
        let cluster = KafkaCluster::start(1).expect("cluster");
        *pid.lock().expect("lock") = cluster.pid(1);
        panic!("the test failed");
    });
    assert!(result.is_err());
    let pid = pid.lock().expect("lock").expect("the broker ran");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "broker {pid} still runs"
    );
}

fn kafka_dirs() -> Vec<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("weir-kafka-"))
        })
        .collect()
}

#[test]
fn three_nodes_replicate_and_elect_a_new_leader_when_one_is_killed() {
    let mut cluster = KafkaCluster::builder()
        .nodes(3)
        .min_insync_replicas(2)
        .start()
        .expect("cluster");
    eprintln!("three nodes started in {:?}", cluster.started_in());
    cluster
        .create_topic("replicated", 1, 3, &[])
        .expect("topic");
    let before = cluster.partitions("replicated").expect("partitions");
    assert_eq!(before[0].replicas.len(), 3);
    produce_pairs(cluster.bootstrap_servers(), "replicated", &pairs(50));
    let leader = u32::try_from(before[0].leader).expect("a leader");
    cluster.kill(leader).expect("kill the leader");
    let deadline = std::time::Instant::now() + READ;
    loop {
        let now = cluster.partitions("replicated").expect("partitions");
        if now[0].leader >= 0 && now[0].leader != before[0].leader {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new leader: {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    produce_pairs(cluster.bootstrap_servers(), "replicated", &pairs(50));
    assert_eq!(
        read_topic(cluster.bootstrap_servers(), "replicated", READ)
            .expect("read")
            .len(),
        100
    );
    cluster.start_node(leader).expect("the old leader returns");
}

#[test]
fn sasl_ssl_with_scram_and_acls_lets_in_whom_it_should() {
    let cluster = KafkaCluster::builder()
        .sasl(SaslMechanism::ScramSha512)
        .tls()
        .acls()
        .user("weir", "weir-secret")
        .user("stranger", "stranger-secret")
        .start()
        .expect("cluster");
    eprintln!(
        "a SASL_SSL node with ACLs started in {:?}",
        cluster.started_in()
    );
    cluster.create_topic("guarded", 1, 1, &[]).expect("topic");
    cluster
        .allow(
            "User:weir",
            &["Read", "Write", "Describe"],
            &["--topic", "guarded"],
        )
        .expect("acl");
    cluster
        .allow(
            "User:weir",
            &["Read"],
            &[
                "--group",
                "weir-tests-readback",
                "--resource-pattern-type",
                "prefixed",
            ],
        )
        .expect("acl");
    let weir = cluster.client_properties("weir", "weir-secret");
    let bootstrap = cluster.bootstrap_servers();
    let mut producer_config = rdkafka::ClientConfig::new();
    producer_config.set("bootstrap.servers", bootstrap);
    for (k, v) in &weir {
        producer_config.set(k, v);
    }
    let producer: rdkafka::producer::FutureProducer = producer_config.create().expect("producer");
    let delivered = futures_block_on(
        producer.send(
            rdkafka::producer::FutureRecord::to("guarded")
                .key("k")
                .payload("v"),
            Duration::from_secs(20),
        ),
    );
    assert!(delivered.is_ok(), "{delivered:?}");
    assert_eq!(
        read_topic_with(bootstrap, &weir, "guarded", READ)
            .expect("read")
            .len(),
        1
    );
    assert_eq!(
        kcat_read_with(bootstrap, &weir, "guarded")
            .expect("kcat")
            .len(),
        1
    );

    let stranger = cluster.client_properties("stranger", "stranger-secret");
    let denied = read_topic_with(bootstrap, &stranger, "guarded", Duration::from_secs(10));
    assert!(
        denied.is_err(),
        "an authenticated user without ACLs read the topic"
    );
    let wrong = cluster.client_properties("weir", "not-the-password");
    let refused = read_topic_with(bootstrap, &wrong, "guarded", Duration::from_secs(10));
    assert!(refused.is_err(), "a wrong password was let in");
}

fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}
