//! `weir plugin new NAME --lang rust|c|python|js|go|zig`: a plugin project that
//! builds, passes its own test, and runs under `weir plugin test` as generated, so
//! authors start from something that works and change it.
//!
//! The templates live next to this file (`scaffold/`); the C one starts from the
//! shipped `c-lowercase` plugin and carries its own copy of the WIT contract. The
//! Python, JavaScript, Go and Zig ones carry a copy of their SDK
//! (`guest-sdk/<language>/`, with the contract) in `weir-sdk/`, so they build on
//! their own.

use std::path::{Path, PathBuf};

/// The plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A Rust crate on the `weir-guest` SDK.
    Rust,
    /// C against the WIT contract, with `wit-bindgen` and clang.
    C,
    /// Python on `guest-sdk/python`, built with componentize-py.
    Python,
    /// JavaScript on `guest-sdk/js`, built with componentize-js.
    Js,
    /// Go on `guest-sdk/go`, built with `wit-bindgen go` and Go's wasip1 port.
    Go,
    /// Zig on `guest-sdk/zig`, built with Zig over `wit-bindgen c`'s bindings.
    Zig,
}

impl Language {
    /// How the language is named in READMEs.
    fn title(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::C => "C",
            Self::Python => "Python",
            Self::Js => "JavaScript",
            Self::Go => "Go",
            Self::Zig => "Zig",
        }
    }
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
const LANG_BUILD: &str = include_str!("scaffold/lang_build.sh");
const LANG_TEST: &str = include_str!("scaffold/lang_test.sh");
const LANG_README: &str = include_str!("scaffold/lang_readme.md");

/// A file of a language's SDK, copied into `weir-sdk/`.
type SdkFile = (&'static str, &'static str);

macro_rules! sdk_files {
    ($language:literal: $($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!("../../../guest-sdk/", $language, "/", $path)))),+]
    };
}

const PYTHON_SDK: &[SdkFile] = sdk_files!("python": "weir_plugin/__init__.py",
    "weir_plugin/testing.py", "weir_component.py", "build.sh", "test.sh");
const JS_SDK: &[SdkFile] = sdk_files!("js": "weir.js", "component.js", "testing.js",
    "build.sh", "test.sh");
const GO_SDK: &[SdkFile] = sdk_files!("go": "go.mod", "weir.go", "weirtest/weirtest.go",
    "glue/export.go.in", "build.sh", "test.sh");
const ZIG_SDK: &[SdkFile] = sdk_files!("zig": "weir.zig", "component.zig", "build.sh",
    "test.sh");

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
    let files: Vec<(String, String)> = match language {
        Language::Rust => {
            let sdk = sdk.map(Path::to_path_buf).or_else(bundled_sdk);
            let dependency = match sdk {
                Some(path) => format!("path = {:?}", path.display().to_string()),
                None => "version = \"0.1\"".to_owned(),
            };
            owned(vec![
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
            ])
        }
        Language::C => owned(vec![
            ("plugin.c", C_PLUGIN.replace("c-lowercase", name)),
            ("build.sh", fill(C_BUILD)),
            ("wit/plugin.wit", WIT.to_owned()),
            ("README.md", fill(C_README)),
            ("sample.json", SAMPLE.to_owned()),
        ]),
        Language::Python | Language::Js | Language::Go | Language::Zig => {
            language_project(name, language)
        }
    };
    for (relative, content) in &files {
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

fn owned(files: Vec<(&str, String)>) -> Vec<(String, String)> {
    files
        .into_iter()
        .map(|(path, content)| (path.to_owned(), content))
        .collect()
}

/// A Python, JavaScript, Go or Zig project: the template's source and test, the
/// build and test scripts, and the SDK with the contract in `weir-sdk/`.
fn language_project(name: &str, language: Language) -> Vec<(String, String)> {
    let fill = |template: &str| template.replace("{{name}}", name);
    // A Go package name: the plugin's name without dashes.
    let package: String = name.chars().filter(|c| *c != '-').collect();
    let (sources, sdk, source, runner, toolchain): (Vec<(&str, String)>, _, _, _, _) =
        match language {
            Language::Python => (
                vec![
                    ("plugin.py", fill(include_str!("scaffold/python/plugin.py"))),
                    (
                        "test_plugin.py",
                        fill(include_str!("scaffold/python/test_plugin.py")),
                    ),
                ],
                PYTHON_SDK,
                "plugin.py",
                "pytest",
                "It needs Python 3 with componentize-py and pytest;",
            ),
            Language::Js => (
                vec![
                    ("plugin.js", fill(include_str!("scaffold/js/plugin.js"))),
                    (
                        "plugin.test.js",
                        fill(include_str!("scaffold/js/plugin.test.js")),
                    ),
                ],
                JS_SDK,
                "plugin.js",
                "node --test",
                "It needs Node.js and @bytecodealliance/componentize-js;",
            ),
            Language::Go => {
                let go = |template: &str| fill(template).replace("{{package}}", &package);
                (
                    vec![
                        ("go.mod", go(include_str!("scaffold/go/go.mod.in"))),
                        ("plugin.go", go(include_str!("scaffold/go/plugin.go.in"))),
                        (
                            "plugin_test.go",
                            go(include_str!("scaffold/go/plugin_test.go.in")),
                        ),
                    ],
                    GO_SDK,
                    "plugin.go",
                    "go test",
                    "It needs Go 1.25 or newer, wit-bindgen, wasm-tools, WASI's preview1 \
                     adapter and the Go wit runtime package (`~/.cache/weir/go-wit-pkg/`);",
                )
            }
            Language::Zig => (
                vec![("plugin.zig", fill(include_str!("scaffold/zig/plugin.zig")))],
                ZIG_SDK,
                "plugin.zig",
                "zig test",
                "It needs Zig (PyPI `ziglang`), wit-bindgen, wasm-tools and WASI's preview1 \
                 adapter;",
            ),
            Language::Rust | Language::C => unreachable!("language_project is for SDK languages"),
        };
    let readme = fill(LANG_README)
        .replace("{{language}}", language.title())
        .replace("{{runner}}", runner)
        .replace("{{source}}", source)
        .replace("{{toolchain}}", toolchain);
    let mut files = owned(sources);
    files.extend(owned(vec![
        ("build.sh", fill(LANG_BUILD)),
        ("test.sh", fill(LANG_TEST)),
        ("README.md", readme),
        ("sample.json", SAMPLE.to_owned()),
        ("weir-sdk/wit/plugin.wit", WIT.to_owned()),
    ]));
    files.extend(
        sdk.iter()
            .map(|(path, content)| (format!("weir-sdk/{path}"), (*content).to_owned())),
    );
    files
}
