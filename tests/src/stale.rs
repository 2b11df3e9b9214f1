//! Cleaning up after test processes that died without dropping their servers.
//!
//! Every server directory the harness makes records the pid of the harness process
//! that made it. A test process killed outright cannot run `Drop`; the next server
//! started on the machine finds directories whose harness is gone, kills the server
//! processes they name, and removes them. Directories of live processes, including
//! other test binaries running in parallel, are left alone.

use std::fs;
use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::HarnessError;

/// The file in a server directory naming the harness process that owns it.
const HARNESS_PID_FILE: &str = "harness.pid";

/// Records this process as the owner of `dir`.
pub(crate) fn claim(dir: &Path) -> Result<(), HarnessError> {
    fs::write(dir.join(HARNESS_PID_FILE), std::process::id().to_string())
        .map_err(|e| HarnessError::io("write harness pid", e))
}

/// Removes the directories named `<prefix>*` in the temp dir whose owner is gone,
/// after killing the processes `server_pids` finds in each.
pub(crate) fn sweep(prefix: &str, server_pids: impl Fn(&Path) -> Vec<i32>) {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(prefix));
        if !ours {
            continue;
        }
        let Some(owner) = read_pid(&path.join(HARNESS_PID_FILE)) else {
            continue;
        };
        if process_alive(owner) {
            continue;
        }
        for pid in server_pids(&path) {
            if process_alive(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = fs::remove_dir_all(&path);
    }
}

/// The first line of `path` as a pid.
pub(crate) fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Whether `pid` runs; a zombie counts as gone.
pub(crate) fn process_alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
        && !fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
}
