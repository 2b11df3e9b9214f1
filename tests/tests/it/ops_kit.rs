//! The operations kit in `ops/`: the Prometheus alert rules pass promtool's own
//! checks and unit tests, and the rules and the Grafana dashboard name only
//! metrics weir serves.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use weir::metrics::{PipelineMetrics, TableLabel};

fn ops_file(relative: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ops")
        .join(relative)
}

fn promtool(args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(ops_file("prometheus"))
        .output()
        .expect("promtool runs (Debian's prometheus package, from scripts/setup.sh)");
    assert!(
        output.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_alert_rules_pass_promtool_checks_and_tests() {
    promtool(&["check", "rules", "weir-alerts.yml"]);
    promtool(&["test", "rules", "weir-alerts.test.yml"]);
}

/// The metric names weir serves, as a query names them (counters with
/// `_total`, histograms with `_bucket`, `_sum`, `_count`).
fn served() -> BTreeSet<String> {
    // A family shows only once it has a label set.
    let metrics = PipelineMetrics::default();
    metrics.stage_rows("sink", "public.t", 1, 1);
    metrics.plugin_call("p", std::time::Duration::from_millis(1), true);
    let table = TableLabel {
        table: "public.t".to_owned(),
    };
    metrics.batches.get_or_create(&table).inc();
    metrics.bytes.get_or_create(&table).inc();
    metrics.snapshot_rows.get_or_create(&table).set(1);
    metrics.snapshot_rows_estimated.get_or_create(&table).set(1);
    let text = metrics.render();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() != Some("#") || fields.next() != Some("TYPE") {
            continue;
        }
        let (Some(name), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{}_total", name.trim_end_matches("_total")));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// Every `weir_…` name in `text`.
fn named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(found) = text[at..].find("weir_") {
        let start = at + found;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| start + n);
        if boundary {
            names.insert(text[start..end].to_owned());
        }
        at = end;
    }
    names
}

#[test]
fn the_rules_and_the_dashboard_name_only_metrics_weir_serves() {
    let served = served();
    assert!(served.contains("weir_up"), "{served:?}");
    assert!(
        served.contains("weir_commit_to_ack_seconds_bucket"),
        "{served:?}"
    );

    let rules = std::fs::read_to_string(ops_file("prometheus/weir-alerts.yml")).expect("rules");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(ops_file("grafana/weir-dashboard.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut expressions = String::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for target in targets {
            expressions.push_str(target["expr"].as_str().expect("expr"));
            expressions.push('\n');
        }
    }
    // Alert names (WeirLagHigh) and file names are no metrics.
    let in_rules: BTreeSet<String> = rules
        .lines()
        .filter(|line| line.trim_start().starts_with("expr:") || line.starts_with("          "))
        .flat_map(named)
        .collect();
    for (what, names) in [("rules", in_rules), ("dashboard", named(&expressions))] {
        assert!(!names.is_empty(), "no metric in the {what}");
        let unknown: Vec<_> = names.difference(&served).collect();
        assert!(
            unknown.is_empty(),
            "the {what} name metrics weir does not serve: {unknown:?}"
        );
    }
}
