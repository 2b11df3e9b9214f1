//! What the benchmarks share: the workload table, its row generator, and the
//! environment knobs.

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
