//! weir: stream PostgreSQL row changes into Kafka.
//!
//! weir reads the write-ahead log through logical replication (`pgoutput`), turns the
//! changes into Apache Arrow record batches, runs them through sandboxed WebAssembly
//! plugins, encodes the survivors (Avro, Debezium JSON, Canal JSON, JSON) and produces
//! them to Kafka. `DESIGN.md` in the shared docs is the map of the stages.
#![warn(missing_docs)]

pub mod batch;
pub mod checkpoint;
pub mod cli;
mod clock;
pub mod config;
pub mod contract;
pub mod encode;
#[cfg(test)]
mod layering;
pub mod metrics;
pub mod pipeline;
pub mod plugin;
pub mod produce;
pub mod redact;
pub mod route;
pub mod source;

pub use weir_pgoutput::Lsn;
/// WAL positions.
pub use weir_pgoutput::lsn;

/// weir's version, as `weir --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
