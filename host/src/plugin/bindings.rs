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

/// The `row-plugin` world: typed rows as WIT values. The interfaces both worlds
/// import (`types`, `host`) are the batch world's, so errors, levels and the `log`
/// import have one Rust type and one implementation.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub(crate) mod row_world {
    wasmtime::component::bindgen!({
        path: "../guest-sdk/wit",
        world: "row-plugin",
        with: {
            "weir:plugin/types": super::batch_world::weir::plugin::types,
            "weir:plugin/host": super::batch_world::weir::plugin::host,
        },
    });
}
