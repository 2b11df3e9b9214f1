//! The `weir` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use weir::cli::plugin::{TestRun, TestRunError, print_report, run_test};
use weir::cli::run::{RunError, cancel_on_signal, run_file};
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
    /// Run a pipeline (a YAML spec) until SIGINT or SIGTERM. On a stop, what was
    /// read is delivered and confirmed before weir exits.
    Run {
        /// The pipeline spec.
        spec: PathBuf,
    },
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
        Command::Run { spec } => run_pipeline(&spec),
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

fn run_pipeline(spec: &std::path::Path) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        cancel_on_signal(shutdown.clone());
        match run_file(spec, Arc::default(), shutdown).await {
            Ok(_) => ExitCode::SUCCESS,
            Err(RunError::Spec(error)) => {
                eprintln!("error: {}: {error}", spec.display());
                ExitCode::from(2)
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(1)
            }
        }
    })
}
