//! Security settings reach librdkafka as given: SASL_SSL with SCRAM and a CA file
//! is accepted (weir's librdkafka is built with OpenSSL and SCRAM), and a mechanism
//! this build lacks is refused at startup with librdkafka's reason, not at the first
//! message. The handshakes themselves, with good and bad credentials, run against
//! Apache Kafka in `pipeline_kafka.rs` and `harness_kafka.rs`.

use std::sync::Arc;

use weir::Lsn;
use weir::checkpoint::CheckpointTracker;
use weir::pipeline::dead_letter::DeadLetterProducer;
use weir::produce::admin::TopicAdmin;
use weir::produce::{KafkaProducer, ProducerOptions};
use weir_tests::generate_certificates;

fn with_properties(properties: &[(&str, &str)]) -> ProducerOptions {
    let mut options = ProducerOptions::new("127.0.0.1:9");
    options.properties = properties
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    options
}

#[test]
fn sasl_ssl_with_scram_and_a_ca_file_is_accepted_by_every_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certificates = generate_certificates(dir.path(), "kafka.test").expect("certificates");
    let ca = certificates.ca_cert.to_string_lossy().into_owned();
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        let options = with_properties(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", mechanism),
            ("sasl.username", "weir"),
            ("sasl.password", "secret"),
            ("ssl.ca.location", &ca),
        ]);
        let tracker = Arc::new(CheckpointTracker::new(Lsn(0)));
        KafkaProducer::new(&options, tracker).expect("producer accepts the settings");
        TopicAdmin::new(&options.brokers, &options.properties, None).expect("admin accepts them");
        DeadLetterProducer::new(&options.brokers, "dlq", &options.properties)
            .expect("dead-letter producer accepts them");
    }
}

#[test]
fn settings_this_build_cannot_honour_are_refused_at_startup() {
    let tracker = Arc::new(CheckpointTracker::new(Lsn(0)));
    let options = with_properties(&[
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "GSSAPI"),
    ]);
    let error = KafkaProducer::new(&options, tracker).expect_err("no Kerberos in this build");
    assert!(
        error.to_string().contains("GSSAPI") || error.to_string().contains("sasl"),
        "{error}"
    );

    let tracker = Arc::new(CheckpointTracker::new(Lsn(0)));
    let options = with_properties(&[
        ("security.protocol", "SSL"),
        ("ssl.ca.location", "/nonexistent/ca.pem"),
    ]);
    let error = KafkaProducer::new(&options, tracker).expect_err("a missing CA file");
    assert!(
        error.to_string().contains("ca.pem") || error.to_string().contains("ssl"),
        "{error}"
    );
}
