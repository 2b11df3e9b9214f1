//! What can go wrong with a plugin: loading it, or one call into it.

use std::path::PathBuf;
use std::time::Duration;

/// Loading, linking or initialising a plugin failed: the pipeline cannot start.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    #[error("creating the WebAssembly engine: {0}")]
    Engine(String),
    #[error("reading plugin {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Not a regular file, or larger than 256 MiB: refused before reading, so `wasm: /dev/zero` cannot exhaust memory.
    #[error("plugin {}: {problem}", path.display())]
    NotAComponentFile { path: PathBuf, problem: String },
    #[error("plugin {} is not a valid WebAssembly component: {message}", path.display())]
    Compile { path: PathBuf, message: String },
    /// The component exports neither world of the contract, or imports something the
    /// host does not provide (an ungranted WASI interface, another contract version).
    #[error("stage {stage}: plugin {} does not fit weir's plugin contract: {message}", path.display())]
    Contract {
        stage: String,
        path: PathBuf,
        message: String,
    },
    /// Instantiation or `init` failed.
    #[error("stage {stage}: {error}")]
    Init { stage: String, error: CallError },
    /// A granted directory cannot be opened.
    #[error("stage {stage}: cannot grant directory {}: {message}", path.display())]
    Grant {
        stage: String,
        path: PathBuf,
        message: String,
    },
}

/// One call into a plugin failed. The stage's `on_error` policy decides what follows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The call ran past the stage's `timeout` and was interrupted.
    #[error("plugin exceeded its deadline of {0:?}")]
    Timeout(Duration),
    /// The plugin tried to grow its memory past the stage's `memory` cap.
    #[error("plugin exceeded its memory cap of {0} bytes")]
    MemoryCap(usize),
    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access …).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The plugin returned an error: the variant of the contract's `plugin-error`.
    #[error("plugin reported {kind}: {message}")]
    Reported {
        /// `invalid-config`, `invalid-input` or `failed`.
        kind: &'static str,
        /// The plugin's message.
        message: String,
    },
    /// The plugin answered with something the host cannot use (a selection of the
    /// wrong length, an undecodable batch, a lost metadata column).
    #[error("plugin output is invalid: {0}")]
    InvalidOutput(String),
}

impl CallError {
    /// Whether the instance is unusable afterwards. A trapped instance's memory may be
    /// inconsistent, so it is dropped and a fresh one instantiated; an instance that
    /// returned an error is fine.
    pub fn poisons_instance(&self) -> bool {
        matches!(
            self,
            CallError::Timeout(_) | CallError::MemoryCap(_) | CallError::Trap(_)
        )
    }
}
