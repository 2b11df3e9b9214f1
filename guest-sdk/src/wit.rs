//! The raw bindings wit-bindgen generates for each world. The [`crate::batch`] and
//! [`crate::row`] modules wrap them; reach for these only to implement the contract
//! by hand.

/// Bindings for the `row-plugin` world.
#[cfg(feature = "row")]
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod row {
    wit_bindgen::generate!({
        path: "wit",
        world: "row-plugin",
        pub_export_macro: true,
        export_macro_name: "export_row_world",
        additional_derives: [PartialEq],
        default_bindings_module: "weir_guest::wit::row",
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
        export_macro_name: "export_batch_world",
        default_bindings_module: "weir_guest::wit::batch",
    });
}
