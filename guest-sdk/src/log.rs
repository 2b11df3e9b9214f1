//! Logging to weir's log, tagged with the stage name. Natively (in `cargo test`) the
//! messages go to stderr.

/// Severity of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// For debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something looks wrong.
    Warn,
    /// Something is wrong.
    Error,
}

/// Writes `message` to weir's log at `level`.
pub fn log(level: Level, message: &str) {
    // Both worlds import the same `host` interface; each has its own generated copy.
    #[cfg(target_family = "wasm")]
    macro_rules! send {
        ($world:ident) => {{
            use crate::wit::$world::weir::plugin::{host, types::Level as L};
            let level = match level {
                Level::Trace => L::Trace,
                Level::Debug => L::Debug,
                Level::Info => L::Info,
                Level::Warn => L::Warn,
                Level::Error => L::Error,
            };
            host::log(level, message);
        }};
    }
    #[cfg(all(target_family = "wasm", feature = "batch"))]
    send!(batch);
    #[cfg(all(target_family = "wasm", feature = "row", not(feature = "batch")))]
    send!(row);
    #[cfg(not(all(target_family = "wasm", any(feature = "batch", feature = "row"))))]
    eprintln!("[{level:?}] {message}");
}

/// `info!("…", args)`: formats and logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)*)) };
}

/// `warn!("…", args)`: formats and logs at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)*)) };
}

/// `debug!("…", args)`: formats and logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)*)) };
}

/// `error!("…", args)`: formats and logs at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)*)) };
}
