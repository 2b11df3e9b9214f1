//! The contract between weir's stages: what one stage hands the next and every
//! stage reads the same way. It sits below every stage and imports none of them.
//!
//! - [`columns`]: a ChangeBatch's metadata columns (`_op`, `_lsn`, `_commit_lsn`,
//!   …), the schema metadata keys and the routing columns plugins may add;
//! - [`CommittedTransaction`]: the source's commit marker, which the checkpoint
//!   confirms once Kafka has every message of it;
//! - [`TableSelector`]: a pipeline's (and a plugin stage's) choice of tables;
//! - [`Messages`]: the encoded keys and values of a batch;
//! - [`topics`]: topic naming and a message's [`Destination`];
//! - [`pg_text`]: PostgreSQL's text forms of Arrow values;
//! - [`SnapshotMarks`]: where a batch of snapshot reads sits in its snapshot;
//! - [`SchemaChange`]: a captured DDL statement (or a TRUNCATE) for the DDL topic;
//! - [`Lsn`]: a WAL position.

pub mod columns;
mod commit;
mod ddl;
pub mod messages;
pub mod pg_text;
mod snapshot_marks;
pub mod sql;
pub mod tables;
pub mod topics;

pub use commit::CommittedTransaction;
pub use ddl::{DdlColumn, DdlCommand, SchemaChange};
pub use messages::{Message, Messages};
pub use snapshot_marks::{Edge, SnapshotMarks};
pub use tables::{TableSelector, TableSelectorError};
pub use topics::{Destination, TopicNames, TopicTemplate};
pub use weir_pgoutput::Lsn;
