//! The `weir` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use weir::cli::commands;
use weir::cli::plugin::TestRun;
use weir::cli::scaffold::Language;
use weir::pipeline::progress::{LogWriter, enable_bars};
use weir::plugin::Limits;

/// Stream PostgreSQL row changes into Kafka, through Arrow and WebAssembly plugins.
///
/// Exit codes: 0 success; 1 the work failed (a pipeline failed while running, a
/// check found a failure, a plugin failed on its input); 2 bad usage or input
/// (unknown flags, an unreadable or invalid spec, a plugin that does not load);
/// 130 a second SIGINT/SIGTERM cut a stop short.
#[derive(Debug, Parser)]
#[command(name = "weir", version = weir::VERSION, about, long_about)]
struct Cli {
    /// Log format on standard error: `pretty` (default; colours on a terminal) or
    /// `json` (one object per line). `RUST_LOG` sets the level (default `info`).
    #[arg(long, global = true, env = "WEIR_LOG_FORMAT", default_value = "pretty")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lang {
    Rust,
    C,
    Python,
    Js,
    Go,
    Zig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline (a YAML spec) until SIGINT or SIGTERM. On a stop, what was
    /// read is delivered and confirmed before weir exits.
    ///
    /// Several specs run side by side in one process, each with its own slot: all
    /// are validated before any starts; one failing does not stop the others (its
    /// /health turns 503), and the exit code is the worst of them.
    Run {
        /// The pipeline specs.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// Check a spec without connecting to anything: it parses, every value means
    /// something, every plugin loads and accepts its config.
    Validate {
        /// The pipeline spec.
        spec: PathBuf,
    },
    /// Validate a spec, then check the peers: the PostgreSQL precheck (settings,
    /// privileges, slot, publication, tables) and Kafka (brokers reachable, every
    /// topic present or creatable). Exit code 1 when anything fails.
    Check {
        /// The pipeline spec.
        spec: PathBuf,
        /// Also produce one test message (`{"weir":"check"}`, key `weir-check`) to
        /// this topic and wait for its acknowledgement: proves write access.
        #[arg(long, value_name = "TOPIC")]
        test_topic: Option<String>,
    },
    /// Read tables of a pipeline again while it streams: their rows come as
    /// snapshot reads (op "r") between the streamed changes, chunk by chunk, and a
    /// change streamed meanwhile always wins over a row read before it.
    ///
    /// The request goes into the WAL: the pipeline of SPEC (its slot) acts on it
    /// when it streams past it, now or when it next starts.
    Snapshot {
        /// The pipeline spec.
        spec: PathBuf,
        /// Tables as schema.table; each must be selected by the spec.
        #[arg(required = true)]
        tables: Vec<String>,
    },
    /// Print the JSON Schema of pipeline specs (for editors; also in
    /// docs/pipeline.schema.json).
    Schema,
    /// Work with replication slots.
    #[command(subcommand)]
    Slot(SlotCommand),
    /// Work with WebAssembly plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
enum SlotCommand {
    /// List the server's replication slots and the WAL each holds back.
    List {
        /// A postgres:// URL (or key=value string) of the database.
        #[arg(long, env = "WEIR_PG_URL")]
        url: String,
    },
    /// Drop a slot no pipeline needs any more (refused while a reader holds it).
    /// The WAL it held is released; a pipeline on it would start over.
    Drop {
        /// The slot.
        name: String,
        /// A postgres:// URL (or key=value string) of the database.
        #[arg(long, env = "WEIR_PG_URL")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Create a plugin project that builds, passes its own test and runs under
    /// `weir plugin test` as generated (a row filter in Rust, or a row map in C).
    New {
        /// The plugin's name (lowercase letters, digits, dashes): the directory,
        /// crate and component name.
        name: String,
        /// The language: rust, c, python, js, go or zig.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Where to create it.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Rust: the weir-guest SDK source to depend on (default: the SDK of the
        /// weir source tree this binary was built from, else crates.io).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
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
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let code = match cli.command {
        Command::Run { specs } => commands::run(&specs),
        Command::Validate { spec } => commands::validate(&spec),
        Command::Check { spec, test_topic } => commands::check(&spec, test_topic.as_deref()),
        Command::Snapshot { spec, tables } => commands::snapshot(&spec, &tables),
        Command::Schema => commands::schema(),
        Command::Slot(SlotCommand::List { url }) => commands::slot_list(&url),
        Command::Slot(SlotCommand::Drop { name, url }) => commands::slot_drop(&url, &name),
        Command::Plugin(PluginCommand::New {
            name,
            lang,
            dir,
            sdk,
        }) => {
            let language = match lang {
                Lang::Rust => Language::Rust,
                Lang::C => Language::C,
                Lang::Python => Language::Python,
                Lang::Js => Language::Js,
                Lang::Go => Language::Go,
                Lang::Zig => Language::Zig,
            };
            commands::plugin_new(&name, language, &dir, sdk.as_deref())
        }
        Command::Plugin(PluginCommand::Test {
            plugin,
            input,
            config,
            table,
            timeout_ms,
            memory_mib,
        }) => commands::plugin_test(&TestRun {
            wasm: plugin,
            input,
            config,
            table,
            limits: Limits {
                timeout: Duration::from_millis(timeout_ms),
                memory_bytes: memory_mib.saturating_mul(1 << 20),
            },
        }),
    };
    ExitCode::from(code)
}

/// Logs on standard error, in the chosen format; `RUST_LOG` sets the level.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match format {
        LogFormat::Pretty => {
            if terminal {
                enable_bars();
            }
            logs.with_ansi(terminal).init()
        }
        LogFormat::Json => logs.json().init(),
    }
}
