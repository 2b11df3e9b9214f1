//! What the benchmarks share: the workload table, its row generator, the
//! environment knobs, and reading quantiles off weir's histograms.

/// The 6-column table every source and pipeline benchmark writes.
pub const BENCH_TABLE: &str = "CREATE TABLE bench (
    id bigint PRIMARY KEY, n integer, label text, at timestamptz, amount numeric(12,2), flag boolean)";

/// One transaction inserting rows `first..=last` into [`BENCH_TABLE`].
pub fn bench_insert(first: u64, last: u64) -> String {
    format!(
        "INSERT INTO bench SELECT n, n % 1000, 'label ' || n, now(), n * 1.25, n % 2 = 0
         FROM generate_series({first}, {last}) n"
    )
}

/// The number in environment variable `name`, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `values` (the upper one of an even count).
///
/// # Panics
///
/// On an empty list.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The upper bound of the bucket holding quantile `q` of histogram `name` in
/// Prometheus exposition text `text` (buckets are cumulative).
pub fn histogram_quantile(text: &str, name: &str, q: f64) -> f64 {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            Some((bound.parse().ok()?, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |(_, count)| *count);
    buckets
        .iter()
        .find(|(_, count)| *count >= q * total)
        .map_or(f64::INFINITY, |(bound, _)| *bound)
}
