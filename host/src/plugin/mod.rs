//! WebAssembly plugins: the wasmtime runtime behind the `plugins:` stages.
//!
//! A stage is a component implementing one world of the contract in
//! `guest-sdk/wit/plugin.wit`. The runtime compiles it once (cached on disk by content
//! hash), keeps a pool of instances, and calls it with a deadline (epoch interruption)
//! and a memory cap. Plugins get WASI with nothing granted: no files, network,
//! environment or real clock unless the stage grants them. `batch-plugin` components
//! receive Arrow IPC and may answer with a selection bitmap the host applies natively;
//! `row-plugin` components receive typed rows converted by [`rows`].

mod bindings;
mod cache;
mod chain;
mod engine;
mod error;
mod instance;
mod ipc;
mod json_rows;
pub mod rows;
mod sample;
mod sandbox;
mod stage;

pub use chain::{ChainError, ChainFailure, ChainOutput, DeadLetter, PluginChain, StageRun};
pub use engine::{EPOCH_TICK, PluginEngine};
pub use error::{CallError, PluginError};
pub use json_rows::rows_as_json;
pub use sample::{SampleError, batch_from_json};
pub use sandbox::{DirGrant, Grants, Limits};
pub use stage::{OnError, PluginStage, StageOutcome, StageSpec};
