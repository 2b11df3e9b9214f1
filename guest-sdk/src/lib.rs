//! What weir plugin authors depend on.
//!
//! A weir plugin is a WebAssembly component that implements one of the two worlds in
//! this crate's `wit/plugin.wit`, the only definition of the contract:
//!
//! - **`batch-plugin`** (feature `batch`): changes arrive as Arrow IPC, one ChangeBatch a
//!   call. Pick it when you can use Arrow: it is the fast path.
//! - **`row-plugin`** (feature `row`): changes arrive as typed rows of WIT values. Pick it
//!   for a language without an Arrow library or for a short row-by-row rule.
//!
//! Enable exactly one feature, implement the generated `Guest` traits, and export your
//! type with `weir_guest::row::export_row_plugin!(MyPlugin)` (or
//! the `batch` equivalent). Build with `cargo build --target wasm32-wasip2`: the result
//! is a component weir loads directly.
#![warn(missing_docs)]

/// The WIT package this crate was generated from. The host checks the major version.
pub const WIT_PACKAGE: &str = "weir:plugin@0.1.0";

/// Bindings for the `row-plugin` world.
#[cfg(feature = "row")]
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod row {
    wit_bindgen::generate!({
        path: "wit",
        world: "row-plugin",
        pub_export_macro: true,
        export_macro_name: "export_row_plugin",
        default_bindings_module: "weir_guest::row",
    });
}

/// Bindings for the `batch-plugin` world.
#[cfg(feature = "batch")]
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod batch {
    wit_bindgen::generate!({
        path: "wit",
        world: "batch-plugin",
        pub_export_macro: true,
        export_macro_name: "export_batch_plugin",
        default_bindings_module: "weir_guest::batch",
    });
}
