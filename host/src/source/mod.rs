//! The PostgreSQL source: what weir reads from the database.
//!
//! Two planes, as PostgreSQL itself separates them:
//!
//! - the **replication plane** ([`replication`]): one connection in replication mode
//!   that creates the slot and streams the WAL through `pgoutput`;
//! - the **control plane** ([`catalog`], [`precheck`]): ordinary connections
//!   (tokio-postgres) for the catalog, publications, slots, prechecks and snapshots.
//!
//! [`pgoutput`] decodes what the replication plane receives, and [`ChangeBatcher`]
//! turns the decoded changes into Arrow ChangeBatches.

mod batch_limits;
pub mod batcher;
pub mod catalog;
pub mod connect;
pub mod ddl;
/// The pgoutput decoder (crate `weir-pgoutput`).
pub use weir_pgoutput as pgoutput;
mod event;
mod failover;
pub mod failover_check;
mod initial;
mod options;
mod ownership;
pub mod postgres;
pub mod precheck;
pub mod publication;
pub mod replication;
mod session;
mod slot_health;
pub mod snapshot;
mod standby;
mod streamed;
mod timeline;
mod unchanged_toast;

pub use crate::contract::TableSelector;
pub use batcher::{BatchLimits, BatcherError, BatcherOutput, ChangeBatcher, CommittedTransaction};
pub use connect::{PgConnectOptions, TlsMode};
pub use options::SlotFailover;
pub use postgres::{
    PostgresSource, PostgresSourceConfig, RetryPolicy, SourceError, SourceEvent, SourceStats,
};
