//! What a plugin's store holds and may reach: WASI with nothing granted unless the
//! stage says so, a memory cap, and the `log` import.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{
    FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use super::bindings::batch_world::weir::plugin::types::Level;
use super::bindings::batch_world::weir::plugin::{host, types};
use super::error::PluginError;

/// What a stage grants its plugin beyond computing. Everything is off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Environment variables passed through, by name (only those that are set).
    #[serde(default)]
    pub env: Vec<String>,
    /// Host directories the plugin may read (and write, when `writable`).
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// The real wall and monotonic clocks. Without this grant both read zero, so a
    /// plugin's output depends only on its input.
    #[serde(default)]
    pub clock: bool,
}

/// A host directory visible to the plugin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the plugin sees it (default: the same path).
    pub guest: Option<String>,
    /// Whether the plugin may create and change files there.
    #[serde(default)]
    pub writable: bool,
}

/// The limits of one stage's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest a single call may run.
    pub timeout: Duration,
    /// Most linear memory an instance may hold, in bytes.
    pub memory_bytes: usize,
}

impl Default for Limits {
    /// One second a call and 256 MiB: far above what a filter over an 8k-row batch
    /// needs, low enough that a runaway plugin cannot take the host down.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            memory_bytes: 256 << 20,
        }
    }
}

/// The data of one plugin instance's store.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryCap,
    stage: Arc<str>,
    /// The end of what the plugin wrote to stderr: a Rust panic's message lands
    /// there before the trap, and belongs in the error.
    pub(crate) stderr: StderrTail,
}

impl StoreState {
    pub(crate) fn new(
        stage: Arc<str>,
        grants: &Grants,
        limits: &Limits,
    ) -> Result<Self, PluginError> {
        let mut wasi = WasiCtxBuilder::new();
        for name in &grants.env {
            if let Ok(value) = std::env::var(name) {
                wasi.env(name, value);
            }
        }
        for dir in &grants.dirs {
            let guest = dir
                .guest
                .clone()
                .unwrap_or_else(|| dir.host.to_string_lossy().into_owned());
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&dir.host, guest, perms)
                .map_err(|e| PluginError::Grant {
                    stage: stage.to_string(),
                    path: dir.host.clone(),
                    message: format!("{e:#}"),
                })?;
        }
        if !grants.clock {
            wasi.wall_clock(FrozenClock);
            wasi.monotonic_clock(FrozenClock);
        }
        let stderr = StderrTail::default();
        wasi.stderr(stderr.clone());
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryCap::new(limits.memory_bytes),
            stage,
            stderr,
        })
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for StoreState {}

impl host::Host for StoreState {
    fn log(&mut self, level: Level, message: String) {
        let stage = &*self.stage;
        match level {
            Level::Trace => tracing::trace!(target: "weir::plugin", stage, "{message}"),
            Level::Debug => tracing::debug!(target: "weir::plugin", stage, "{message}"),
            Level::Info => tracing::info!(target: "weir::plugin", stage, "{message}"),
            Level::Warn => tracing::warn!(target: "weir::plugin", stage, "{message}"),
            Level::Error => tracing::error!(target: "weir::plugin", stage, "{message}"),
        }
    }
}

/// A clock that never moves, for plugins without the `clock` grant: the wall clock
/// reads the Unix epoch. The monotonic clock reads one second rather than zero,
/// because Go's runtime treats a zero monotonic reading as fatal when it starts.
struct FrozenClock;

/// What the frozen monotonic clock reads, in nanoseconds.
const FROZEN_MONOTONIC_NANOS: u64 = 1_000_000_000;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        FROZEN_MONOTONIC_NANOS
    }
}

/// Caps linear memory and remembers that the cap was hit, so a failed call is
/// reported as "memory cap" rather than as an anonymous trap.
pub(crate) struct MemoryCap {
    max_bytes: usize,
    pub(crate) exceeded: bool,
}

/// Table elements an instance may hold: generous for any real plugin (function
/// references for indirect calls), small enough to stop a table-growing loop.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl MemoryCap {
    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            // A trap rather than a failed `memory.grow`: most guest allocators abort
            // on failure anyway, and a trap names the cause.
            return Err(wasmtime::format_err!(
                "memory cap of {} bytes reached",
                self.max_bytes
            ));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// The last [`StderrTail::CAPACITY`] bytes a plugin wrote to stderr; older bytes
/// are dropped, so a chatty plugin costs no more memory than a quiet one.
#[derive(Debug, Clone, Default)]
pub(crate) struct StderrTail(Arc<std::sync::Mutex<std::collections::VecDeque<u8>>>);

impl StderrTail {
    const CAPACITY: usize = 2048;

    /// What was written since the last call, as text (lossy), and forgets it.
    pub(crate) fn take(&self) -> String {
        let mut bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let text = String::from_utf8_lossy(bytes.make_contiguous())
            .trim()
            .to_owned();
        bytes.clear();
        text
    }
}

impl wasmtime_wasi::cli::IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut bytes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        bytes.extend(buf);
        let excess = bytes.len().saturating_sub(Self::CAPACITY);
        bytes.drain(..excess);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
