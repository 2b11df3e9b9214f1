//! The `weir` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use weir::cli::plugin::{TestRun, TestRunError, print_report, run_test};
use weir::plugin::Limits;

/// Stream PostgreSQL row changes into Kafka, through Arrow and WebAssembly plugins.
///
/// Exit codes: 0 success; 1 the work failed (a plugin failed on its input); 2 bad
/// usage or input (unknown flags, unreadable files, a plugin that does not load).
#[derive(Debug, Parser)]
#[command(name = "weir", version = weir::VERSION, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with WebAssembly plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Run a plugin on sample rows and print the rows that come out (JSON lines on
    /// stdout, a summary on stderr). No database or broker needed.
    ///
    /// The input is a JSON array of row objects, or an object with `table`,
    /// `columns` (["id int8", "total numeric(10,2)"]), `primary_key` and `rows`.
    /// `_op` ("c", "u", "d", "r") and `_before` (an object) set the change kind and
    /// the old row image.
    Test {
        /// The plugin component (.wasm).
        plugin: PathBuf,
        /// The sample rows (JSON).
        #[arg(long, short)]
        input: PathBuf,
        /// The stage's config as JSON, or @FILE holding JSON.
        #[arg(long, short)]
        config: Option<String>,
        /// The table the rows belong to, as schema.table (overrides the sample's).
        #[arg(long)]
        table: Option<String>,
        /// Deadline of the call, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// Memory cap of the plugin, in MiB.
        #[arg(long, default_value_t = 256)]
        memory_mib: usize,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Plugin(PluginCommand::Test {
            plugin,
            input,
            config,
            table,
            timeout_ms,
            memory_mib,
        }) => {
            let run = TestRun {
                wasm: plugin,
                input,
                config,
                table,
                limits: Limits {
                    timeout: Duration::from_millis(timeout_ms),
                    memory_bytes: memory_mib.saturating_mul(1 << 20),
                },
            };
            match run_test(&run) {
                Ok(report) => {
                    let result = print_report(
                        &report,
                        &mut std::io::stdout().lock(),
                        &mut std::io::stderr().lock(),
                    );
                    if let Err(error) = result {
                        eprintln!("error: writing the output: {error}");
                        return ExitCode::from(2);
                    }
                    ExitCode::SUCCESS
                }
                Err(TestRunError::Plugin(error)) => {
                    eprintln!("error: the plugin failed: {error}");
                    ExitCode::from(1)
                }
                Err(TestRunError::Setup(error)) => {
                    eprintln!("error: {error:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
