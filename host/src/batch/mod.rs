//! ChangeBatch: the Arrow contract between weir's stages.
//!
//! One batch holds changes of one table, in commit order. Its columns, in order:
//!
//! | column | Arrow type | meaning |
//! |---|---|---|
//! | `_op` | UInt8 | `r` snapshot read, `c` insert, `u` update, `d` delete (ASCII) |
//! | `_lsn` | UInt64 | WAL position of the change |
//! | `_commit_lsn` | UInt64 | commit position of its transaction: the checkpoint unit |
//! | `_xid` | UInt32 | transaction id |
//! | `_commit_ts` | Timestamp(µs, "UTC") | commit time |
//! | `_seq` | UInt32 | position within the transaction |
//! | user columns | see [`types`] | the new row; for deletes the old key or row |
//! | `_before` | Struct of the user columns, nullable | the old row image, when the replica identity sends one |
//! | `_unchanged` | List<UInt16>, nullable | indexes of user columns whose TOASTed value was not sent (the column is null) |
//!
//! User columns whose name starts with `_` are escaped with one more `_` (`_x` →
//! `__x`, original name in the field's `weir.column_name`), so they never collide with
//! weir's. Schema metadata: `weir.schema`, `weir.table`, `weir.relation_oid`,
//! `weir.primary_key`, `weir.schema_version`; per user field `weir.pg_type`.
//!
//! [`ChangeBatchBuilder`] builds them from pgoutput tuples, with typed Arrow builders
//! per column that are reused from batch to batch.

pub(crate) mod builder;
pub(crate) mod parse;
#[cfg(test)]
mod pg_text_tests;
pub mod schema;
pub mod types;

pub use builder::{BatchError, ChangeBatchBuilder, RowMeta};
pub use schema::{CatalogFacts, ColumnSpec, TableSchema};
pub use types::{ColumnKind, ElementKind};
