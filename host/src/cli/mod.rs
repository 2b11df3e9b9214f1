//! The `weir` command's subcommands, as library code so tests can drive them.

pub mod check;
pub mod commands;
pub mod plugin;
pub mod run;
pub mod scaffold;
pub mod slot;
pub mod snapshot;
