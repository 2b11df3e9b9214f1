//! The shared harness for weir's end-to-end tests.
//!
//! Tests run against real peers, started here as processes on loopback:
//!
//! - [`PgCluster`]: a throwaway PostgreSQL cluster (`wal_level=logical`) per test, of
//!   the major version `WEIR_TEST_PG` selects ([`PgInstall`]).
//! - [`KafkaCluster`]: Apache Kafka, 1 or 3 KRaft nodes, with SASL, TLS and ACLs on
//!   request.
//! - [`Broker`]: librdkafka's mock cluster (`weir-dev-broker`), for fault injection
//!   only: it keeps 5 MiB a partition.
//! - [`read_topic`] reads a topic back completely with our client; [`kcat_read`] does
//!   the same with kcat, an independent implementation of the protocol.
//!
//! Every peer is owned by the test that started it and is stopped, with its files
//! removed, when dropped, including when the test fails.

pub mod batches;
pub mod bench;
pub mod broker;
pub mod error;
pub mod http;
pub mod judges;
pub mod kafka;
pub mod kafka_cluster;
pub mod pg;
pub mod pg_install;
pub mod pipeline;
pub mod plugins;
pub mod port;
pub mod registry;
pub mod replication;
pub mod server_cpu;
mod stale;
pub mod tls;

pub use batches::{orders_batch, with_not_null, with_op, with_primary_key};
pub use broker::{Broker, dev_broker_path, target_bin_path};
pub use error::HarnessError;
pub use http::{http_get, metric_sample};
pub use judges::{
    ConnectStandalone, DebeziumOracle, FlinkFormat, FlinkRow, JvmTuning, NamedRow, OracleEvent,
    PaimonFormat, PaimonRefusal, PaimonTable, apply_changelog, canal_flat_message_table,
    dts_record_table, flink_debezium_read, flink_read, flink_read_canal_of, judges_home,
    oms_default_table, paimon_table, shareplex_table,
};
pub use kafka::{
    KcatRecord, MessageCounter, Record, kafka_python_partitions, kcat_read, kcat_read_with,
    produce, read_topic, read_topic_committed, read_topic_with,
};
pub use kafka_cluster::{KafkaCluster, KafkaClusterBuilder, SaslMechanism, kafka_version};
pub use pg::{
    PgCluster, PgClusterBuilder, ReplicationSlot, SUPERUSER_PASSWORD, sweep_stale_clusters,
};
pub use pg_install::PgInstall;
pub use pipeline::{RunningPipeline, WeirProcess};
pub use plugins::{failed, passed, plugin_dir, plugin_path, plugin_target_dir, text_column};
pub use port::free_loopback_port;
pub use registry::{SchemaRegistry, fastavro_decode};
pub use replication::{
    ReplicationFixture, batch_messages, batch_outputs, captured_batches, read_transactions,
    replayed_insert_sql, table_batch,
};
pub use server_cpu::ServerCpu;
pub use tls::{TestCertificates, generate_certificates};
pub use weir::Lsn;

/// A name unique to this process and call, for slots, publications and topics
/// (lowercase, safe as a PostgreSQL identifier and a Kafka topic name).
pub fn unique_name(stem: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{stem}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
