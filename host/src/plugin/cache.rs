//! Compiled components on disk, keyed by the content hash of the `.wasm` file and the
//! engine's compatibility hash: compiling a component takes seconds, loading it back
//! takes milliseconds.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of `<sha256>-<engine>.cwasm` files.
#[derive(Debug)]
pub(crate) struct ComponentCache {
    dir: PathBuf,
    /// Distinguishes artifacts of other wasmtime versions and settings, which must
    /// never be loaded by this engine.
    engine_key: u64,
}

impl ComponentCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: hasher.finish(),
        }
    }

    /// The component for `wasm`, compiled once. A cache that cannot be read or
    /// written only costs time: the component is compiled and the failure logged.
    pub(crate) fn load(&self, engine: &Engine, wasm: &[u8]) -> Result<Component, String> {
        let path = self.path_for(wasm);
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(component) => return Ok(component),
                Err(error) => tracing::warn!(
                    path = %path.display(), %error,
                    "ignoring an unreadable cached component; compiling again"
                ),
            }
        }
        let component = Component::new(engine, wasm).map_err(|e| format!("{e:#}"))?;
        if let Err(error) = self.store(&path, &component) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot cache a compiled component");
        }
        Ok(component)
    }

    fn path_for(&self, wasm: &[u8]) -> PathBuf {
        let digest = Sha256::digest(wasm);
        let mut name = String::with_capacity(64 + 1 + 16 + 6);
        for byte in digest {
            name.push_str(&format!("{byte:02x}"));
        }
        name.push_str(&format!("-{:016x}.cwasm", self.engine_key));
        self.dir.join(name)
    }

    /// Writes through a temporary file and a rename, so a concurrent reader or a
    /// crash never sees half a file.
    fn store(&self, path: &Path, component: &Component) -> Result<(), String> {
        let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let mut file = tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| e.to_string())?;
        file.write_all(&bytes).map_err(|e| e.to_string())?;
        file.persist(path).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Loads a compiled artifact.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> Result<Component, String> {
    // SAFETY: wasmtime requires that the file was produced by `Component::serialize`
    // of a compatible engine and was not altered since: it runs the native code
    // inside. weir writes the files of this directory itself (atomically, named by
    // the source's SHA-256 and the engine's compatibility hash) and wasmtime checks
    // the header's version and settings before use. The directory is the user's own
    // cache, trusted like the weir binary itself; `weir` documents this.
    unsafe { Component::deserialize_file(engine, path) }.map_err(|e| format!("{e:#}"))
}
