//! The initial snapshot: a table's existing rows, read under one consistent
//! snapshot and turned into ChangeBatches (`_op = r`) through the same builder as
//! streamed rows.

mod copy_binary;
pub mod incremental;
pub mod incremental_record;
pub mod initial;
mod marks;
pub mod parallel;
pub mod progress;
pub mod table;
pub mod visibility;
mod writers;

pub use initial::{InitialSnapshot, SnapshotEvent, SnapshotOptions};
pub use progress::{
    IncrementalProgress, IncrementalTable, RecordedProgress, SnapshotMode, SnapshotProgress,
    TableProgress,
};
