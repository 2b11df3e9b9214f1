//! The `weir` command.

use clap::Parser;

/// Stream PostgreSQL row changes into Kafka, through Arrow and WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "weir", version = weir::VERSION, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
