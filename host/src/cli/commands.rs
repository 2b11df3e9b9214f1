//! Each subcommand as `weir` runs it: the work (from the modules beside this one),
//! what it prints, and its exit code. `main.rs` only parses arguments and calls
//! one of these.
//!
//! Exit codes: 0 success; 1 the work failed (a pipeline failed while running, a
//! check found a failure, a plugin failed on its input); 2 bad usage or input (an
//! unreadable or invalid spec, a plugin that does not load); 130 a second
//! SIGINT/SIGTERM cut a stop short ([`super::run::EXIT_INTERRUPTED`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::check::{check_file, validate_file};
use super::plugin::{TestRun, TestRunError, print_report, run_test};
use super::run::{EXIT_FAILED, EXIT_USAGE, RunError, report, run_specs};
use super::scaffold::{Language, create};
use crate::config::PipelineSpec;
use crate::source::precheck::CheckStatus;

/// `weir run SPEC…`.
pub fn run(specs: &[PathBuf]) -> u8 {
    with_runtime(run_specs(specs))
}

/// `weir validate SPEC`.
pub fn validate(spec: &Path) -> u8 {
    match validate_file(spec) {
        Ok(config) => {
            println!(
                "{}: valid ({} plugin stage(s) loaded)",
                spec.display(),
                config.stages.len()
            );
            0
        }
        Err(error) => report(spec, &error),
    }
}

/// `weir check SPEC [--test-topic T]`: 1 when any check failed.
pub fn check(spec: &Path, test_topic: Option<&str>) -> u8 {
    with_runtime(async {
        match check_file(spec, test_topic).await {
            Ok(lines) => {
                for line in &lines {
                    println!("{line}");
                }
                u8::from(lines.iter().any(|l| l.status == CheckStatus::Fail))
            }
            Err(error) => report(spec, &error),
        }
    })
}

/// `weir snapshot SPEC TABLE…`.
pub fn snapshot(spec: &Path, tables: &[String]) -> u8 {
    with_runtime(async {
        match super::snapshot::request(spec, tables).await {
            Ok(tables) => {
                println!(
                    "asked the pipeline of {} to snapshot {}",
                    spec.display(),
                    tables.join(", ")
                );
                0
            }
            Err(error) => report(spec, &error),
        }
    })
}

/// `weir schema`: the JSON Schema of specs on stdout.
pub fn schema() -> u8 {
    match serde_json::to_string_pretty(&PipelineSpec::json_schema()) {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(error) => fail(EXIT_FAILED, &error),
    }
}

/// `weir slot list`.
pub fn slot_list(url: &str) -> u8 {
    with_runtime(async {
        match super::slot::slots(url).await {
            Ok(slots) => match super::slot::print_slots(&slots, &mut std::io::stdout().lock()) {
                Ok(()) => 0,
                Err(error) => fail(EXIT_FAILED, &format!("writing the output: {error}")),
            },
            Err(error) => fail(EXIT_FAILED, &format!("{error:#}")),
        }
    })
}

/// `weir slot drop NAME`: 1 when there is no such slot.
pub fn slot_drop(url: &str, name: &str) -> u8 {
    with_runtime(async {
        match super::slot::drop(url, name).await {
            Ok(true) => {
                println!("dropped slot {name}");
                0
            }
            Ok(false) => fail(EXIT_FAILED, &format!("there is no slot {name}")),
            Err(error) => fail(EXIT_FAILED, &format!("{error:#}")),
        }
    })
}

/// `weir plugin new NAME`.
pub fn plugin_new(name: &str, language: Language, dir: &Path, sdk: Option<&Path>) -> u8 {
    match create(name, language, dir, sdk) {
        Ok(path) => {
            println!("created {} (see its README.md)", path.display());
            0
        }
        Err(error) => fail(EXIT_USAGE, &error),
    }
}

/// `weir plugin test PLUGIN --input SAMPLE`: 1 when the plugin failed on the
/// sample, 2 when it could not be run at all.
pub fn plugin_test(run: &TestRun) -> u8 {
    match run_test(run) {
        Ok(report) => {
            let printed = print_report(
                &report,
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            match printed.and_then(|()| std::io::stdout().flush()) {
                Ok(()) => 0,
                Err(error) => fail(EXIT_USAGE, &format!("writing the output: {error}")),
            }
        }
        Err(error @ TestRunError::Plugin(_)) => fail(EXIT_FAILED, &error),
        Err(TestRunError::Setup(error)) => fail(EXIT_USAGE, &format!("{error:#}")),
    }
}

/// Prints `error: …` (credentials masked) and returns `code`.
fn fail(code: u8, error: &dyn std::fmt::Display) -> u8 {
    eprintln!("{}", crate::redact::credentials(&format!("error: {error}")));
    code
}

fn with_runtime(work: impl std::future::Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(error) => fail(
            EXIT_FAILED,
            &RunError::Failed(anyhow::anyhow!("starting the runtime: {error}")),
        ),
    }
}
