//! Which WAL position weir may confirm to PostgreSQL: the at-least-once guarantee.

mod tracker;

pub use tracker::{CheckpointError, CheckpointTracker};
