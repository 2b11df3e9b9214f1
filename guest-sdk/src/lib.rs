//! What weir plugin authors depend on.
//!
//! A weir plugin is a WebAssembly component that implements one of the two worlds of
//! this crate's `wit/plugin.wit`, the only definition of the contract. This crate gives
//! each world a Rust face:
//!
//! - **Batch level** (feature `batch`, the fast path): implement [`batch::BatchPlugin`]
//!   and receive each ChangeBatch as an Arrow `RecordBatch`. A filter answers with a
//!   boolean mask that weir applies natively; a transform returns a new batch.
//! - **Row level** (feature `row`, the short path): write one function and mark it
//!   `#[weir_guest::filter]` or `#[weir_guest::map]`, or implement [`row::RowPlugin`].
//!
//! Enable exactly one feature. Build with `cargo build --target wasm32-wasip2
//! --release`: the `.wasm` file is a component weir loads directly. Everything but the
//! final export compiles natively too, so `cargo test` tests a plugin like any crate.
//!
//! A filter in full:
//!
//! ```
//! # #[cfg(feature = "row")] mod example {
//! use weir_guest::row::Row;
//!
//! /// Keeps paid orders over 100.
//! #[weir_guest::filter]
//! fn keep(row: &Row) -> bool {
//!     row.text("status") == Some("paid") && row.float("total").is_some_and(|t| t > 100.0)
//! }
//! # }
//! ```
#![warn(missing_docs)]

mod error;
pub mod log;
pub mod wit;

#[cfg(feature = "batch")]
pub mod batch;
#[cfg(feature = "row")]
pub mod row;

pub use error::{Error, ErrorKind, Result};
pub use weir_guest_macros::{filter, map};

/// The WIT package this crate was generated from. The host checks the major version.
pub const WIT_PACKAGE: &str = "weir:plugin@0.1.0";

/// Config of a plugin that takes none: `{}` or no `config` at all (anything else is
/// an `invalid-config` error, so a misplaced key does not go unnoticed).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// Parses a stage's JSON `config` into the plugin's config type; an unknown or
/// mistyped key becomes an `invalid-config` error naming it.
pub fn parse_config<C: serde::de::DeserializeOwned>(json: &str) -> Result<C> {
    serde_json::from_str(json).map_err(|e| Error::config(format!("config: {e}")))
}

#[doc(hidden)]
pub mod __private {
    use std::any::Any;
    use std::cell::RefCell;

    thread_local! {
        /// The plugin's state: one instance per component instance (wasm is single
        /// threaded). Typed per plugin by the export macro's `downcast`.
        static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
    }

    /// Runs `f` on the state of type `T`, set by `init`.
    pub fn with_state<T: 'static, R>(
        f: impl FnOnce(&mut T) -> crate::Result<R>,
    ) -> crate::Result<R> {
        STATE.with_borrow_mut(|state| {
            let state = state
                .as_mut()
                .and_then(|state| state.downcast_mut::<T>())
                .ok_or_else(|| crate::Error::failed("called before init"))?;
            f(state)
        })
    }

    /// Replaces the state.
    pub fn set_state<T: 'static>(value: T) {
        STATE.with_borrow_mut(|state| *state = Some(Box::new(value)));
    }
}
