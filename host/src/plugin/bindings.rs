//! Host bindings for the two worlds of `guest-sdk/wit/plugin.wit`, generated at build
//! time so a contract change that the host does not follow fails to compile.

/// The `batch-plugin` world: Arrow IPC in, selection or IPC out.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub(crate) mod batch_world {
    wasmtime::component::bindgen!({
        path: "../guest-sdk/wit",
        world: "batch-plugin",
    });
}

/// The `row-plugin` world: typed rows as WIT values.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub(crate) mod row_world {
    wasmtime::component::bindgen!({
        path: "../guest-sdk/wit",
        world: "row-plugin",
    });
}
