//! Pipelines: the YAML spec, its checked form, and the running pipeline that joins
//! the source, the plugin chain, the encoder, the router and the producer.

pub mod build;
pub mod progress;
pub mod run;
mod side_topics;
mod snapshot;
pub mod spec;
pub mod state;
pub mod throttle;
mod variables;

pub use build::{FormatConfig, PipelineConfig, Throttle};
pub use run::{PipelineStats, RunSummary, run};
pub use spec::{PipelineSpec, SpecError};
