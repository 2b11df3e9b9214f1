//! `weir plugin new NAME --lang rust|c`: a plugin project that builds, passes its
//! own test, and runs under `weir plugin test` as generated, so authors start from
//! something that works and change it.
//!
//! The templates live next to this file (`scaffold/`); the C one starts from the
//! shipped `c-lowercase` plugin and carries its own copy of the WIT contract.

use std::path::{Path, PathBuf};

/// The plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A Rust crate on the `weir-guest` SDK.
    Rust,
    /// C against the WIT contract, with `wit-bindgen` and clang.
    C,
}

/// A project could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// Names become crate, file and stage names.
    #[error("plugin name {0:?}: use lowercase letters, digits and dashes, starting with a letter")]
    Name(String),
    /// Nothing is overwritten.
    #[error("{0} already exists")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

const RUST_CARGO: &str = include_str!("scaffold/rust_cargo.toml");
const RUST_LIB: &str = include_str!("scaffold/rust_lib.rs");
const RUST_README: &str = include_str!("scaffold/rust_readme.md");
const C_BUILD: &str = include_str!("scaffold/c_build.sh");
const C_README: &str = include_str!("scaffold/c_readme.md");
const C_PLUGIN: &str = include_str!("../../../plugins/c-lowercase/plugin.c");
const WIT: &str = include_str!("../../../guest-sdk/wit/plugin.wit");
const SAMPLE: &str = include_str!("../../../examples/plugins/orders.json");
/// The plugins' lock file: a generated crate resolves to the versions weir is
/// tested with (cargo drops what it does not use).
const LOCK: &str = include_str!("../../../plugins/Cargo.lock");

/// The SDK this weir was built from, when its source tree is still there.
pub fn bundled_sdk() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    path.join("Cargo.toml")
        .is_file()
        .then(|| path.canonicalize().unwrap_or(path))
}

/// Creates `parent/name` for `language`; `sdk` is the `weir-guest` source to depend
/// on (Rust; default [`bundled_sdk`], else crates.io). Returns the directory.
pub fn create(
    name: &str,
    language: Language,
    parent: &Path,
    sdk: Option<&Path>,
) -> Result<PathBuf, ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ScaffoldError::Name(name.to_owned()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let fill = |template: &str| template.replace("{{name}}", name);
    let files: Vec<(&str, String)> = match language {
        Language::Rust => {
            let sdk = sdk.map(Path::to_path_buf).or_else(bundled_sdk);
            let dependency = match sdk {
                Some(path) => format!("path = {:?}", path.display().to_string()),
                None => "version = \"0.1\"".to_owned(),
            };
            vec![
                (
                    "Cargo.toml",
                    fill(RUST_CARGO).replace("{{sdk}}", &dependency),
                ),
                ("Cargo.lock", LOCK.to_owned()),
                ("src/lib.rs", fill(RUST_LIB)),
                (
                    "README.md",
                    fill(RUST_README).replace("{{artifact}}", &name.replace('-', "_")),
                ),
                ("sample.json", SAMPLE.to_owned()),
            ]
        }
        Language::C => vec![
            ("plugin.c", C_PLUGIN.replace("c-lowercase", name)),
            ("build.sh", fill(C_BUILD)),
            ("wit/plugin.wit", WIT.to_owned()),
            ("README.md", fill(C_README)),
            ("sample.json", SAMPLE.to_owned()),
        ],
    };
    for (relative, content) in files {
        let path = dir.join(relative);
        let write = |path: &Path| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, content.as_bytes())
        };
        write(&path).map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
        #[cfg(unix)]
        if relative.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(
                |source| ScaffoldError::Write {
                    path: path.clone(),
                    source,
                },
            )?;
        }
    }
    Ok(dir)
}
