//! The running pipeline: the source on the async runtime, the stages on one worker
//! thread, the checkpoint tracker between them, and the side topics (transaction
//! metadata, heartbeats, the snapshot's state, dead letters).

pub mod dead_letter;
pub mod exactly_once;
pub mod progress;
pub mod run;
mod side_topics;
mod snapshot;
mod stages;
pub mod state;
pub mod throttle;
mod worker;

pub use run::{PipelineError, PipelineStats, RunSummary, run};
