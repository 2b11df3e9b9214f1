//! The PostgreSQL source: what weir reads from the database.
//!
//! Two planes, as PostgreSQL itself separates them:
//!
//! - the **replication plane** ([`replication`]): one connection in replication mode
//!   that creates the slot and streams the WAL through `pgoutput`;
//! - the **control plane**: ordinary connections (tokio-postgres) for the catalog,
//!   publications, prechecks and snapshots.
//!
//! [`pgoutput`] decodes what the replication plane receives, and [`ChangeBatcher`]
//! turns the decoded changes into Arrow ChangeBatches.

pub mod batcher;
pub mod pgoutput;
pub mod replication;

pub use batcher::{BatchLimits, BatcherError, ChangeBatcher};
