//! weir's integration tests, one binary: each module is a suite, named after the
//! stage or command it drives (`source_*`, `pipeline_*`, `cli_*`, ...). One binary links
//! wasmtime, librdkafka and arrow once, instead of once per suite.
//!
//! Run one suite with a filter: `cargo test -p weir-tests --test it -- source_types::`.

mod cli_commands;
mod cli_plugin;
mod cli_plugin_new;
mod cli_run;
mod conformance_debezium;
mod conformance_flink_formats;
mod encode_avro;
mod encode_json;
mod harness;
mod harness_kafka;
mod ops_kit;
mod pipeline_ddl;
mod pipeline_exactly_once;
mod pipeline_failover;
mod pipeline_formats;
mod pipeline_kafka;
mod pipeline_outage;
mod pipeline_paced;
mod pipeline_snapshot;
mod plugin_languages;
mod plugin_runtime;
mod plugins_build;
mod sink_partition;
mod sink_producer;
mod sink_security;
mod sink_topics;
mod source_control;
mod source_library;
mod source_replication;
mod source_snapshot;
mod source_stage;
mod source_streaming;
mod source_tls;
mod source_types;
mod source_versions;
