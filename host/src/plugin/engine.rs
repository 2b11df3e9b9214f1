//! One wasmtime engine for the process: compilation settings, the epoch clock that
//! enforces call deadlines, and loading components through the on-disk cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel};

use super::cache::ComponentCache;
use super::error::PluginError;

/// How often the epoch advances. A call's deadline is rounded up to whole ticks, so
/// a plugin overruns its `timeout` by at most one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// The largest component file weir reads: Python components (the largest kind,
/// with their interpreter inside) weigh about 20 MB, so this leaves room while a
/// path to a device or a huge file by mistake is refused before it fills memory.
pub(crate) const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// The process's plugin engine. Cheap to clone; the epoch clock stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    cache: Option<ComponentCache>,
    /// Held for its `Drop`, which stops the clock.
    _ticker: EpochTicker,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// An engine whose compiled components are cached in `cache_dir` (`None`: compile
    /// every time, as tests of the compiler itself want).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        let mut config = Config::new();
        // Deadlines by epoch: a counter check at loop heads and function entries,
        // far cheaper than fuel (DESIGN.md: 10–20% against 20–30%).
        config.epoch_interruption(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let cache = cache_dir.map(|dir| ComponentCache::new(dir, &engine));
        let ticker = EpochTicker::start(engine.clone())
            .map_err(|e| PluginError::Engine(format!("starting the epoch clock: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                cache,
                _ticker: ticker,
            }),
        })
    }

    /// The engine with the default cache directory: `$WEIR_CACHE_DIR/components`,
    /// else `$XDG_CACHE_HOME/weir/components`, else `~/.cache/weir/components`.
    pub fn with_default_cache() -> Result<Self, PluginError> {
        Self::new(default_cache_dir())
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Loads a component from a `.wasm` file, from the cache when this exact file was
    /// compiled before by this engine configuration.
    ///
    /// # Errors
    ///
    /// [`PluginError::NotAComponentFile`] for a device, a directory or a file over
    /// [`MAX_COMPONENT_BYTES`]; [`PluginError::Read`] and [`PluginError::Compile`].
    pub fn load(&self, path: &Path) -> Result<Component, PluginError> {
        let read_error = |error| PluginError::Read {
            path: path.to_owned(),
            error,
        };
        let refused = |problem: String| PluginError::NotAComponentFile {
            path: path.to_owned(),
            problem,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let metadata = file.metadata().map_err(read_error)?;
        if !metadata.is_file() {
            return Err(refused("is not a regular file".to_owned()));
        }
        if metadata.len() > MAX_COMPONENT_BYTES {
            return Err(refused(format!(
                "is {} bytes, more than the {MAX_COMPONENT_BYTES} a component may have",
                metadata.len()
            )));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        // Read at most one byte past the cap, in case the file grew since.
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_COMPONENT_BYTES + 1),
            &mut bytes,
        )
        .map_err(read_error)?;
        if bytes.len() as u64 > MAX_COMPONENT_BYTES {
            return Err(refused(
                "grew past the size a component may have".to_owned(),
            ));
        }
        self.load_bytes(&bytes)
            .map_err(|message| PluginError::Compile {
                path: path.to_owned(),
                message,
            })
    }

    fn load_bytes(&self, bytes: &[u8]) -> Result<Component, String> {
        match &self.inner.cache {
            Some(cache) => cache.load(&self.inner.engine, bytes),
            None => Component::new(&self.inner.engine, bytes).map_err(|e| format!("{e:#}")),
        }
    }

    /// Number of epoch ticks that covers `timeout`, plus one because the current tick
    /// may be about to end.
    pub(crate) fn deadline_ticks(timeout: Duration) -> u64 {
        let tick = EPOCH_TICK.as_nanos();
        let ticks = timeout.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
        return Some(PathBuf::from(dir).join("components"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("weir").join("components"))
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`].
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod load_tests {
    use super::*;

    /// Issue 15, item 4: a device or a directory is refused before it is read.
    #[test]
    fn only_regular_files_are_read() {
        let engine = PluginEngine::new(None).expect("engine");
        for path in ["/dev/zero", "/tmp"] {
            match engine.load(Path::new(path)) {
                Err(PluginError::NotAComponentFile { problem, .. }) => {
                    assert!(problem.contains("not a regular file"), "{problem}");
                }
                other => panic!("{path}: {:?}", other.map(|_| "loaded")),
            }
        }
    }
}
