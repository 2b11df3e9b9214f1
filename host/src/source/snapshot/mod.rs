//! The initial snapshot: a table's existing rows, read under one consistent
//! snapshot and turned into ChangeBatches (`_op = r`) through the same builder as
//! streamed rows.

mod copy_text;
pub mod parallel;
pub mod table;
