#!/usr/bin/env bash
# The benchmark harness: installs what is missing, builds weir, its plugins and the
# harness in release mode, then runs every workload against a local PostgreSQL 15,
# Apache Kafka (scripts/fetch-kafka.sh) and the test Schema Registry, and writes the report into
# docs/PERFORMANCE.md, docs/bench/results.json and docs/bench/throughput.png.
#
#   WEIR_BENCH_SCALE=0.1 scripts/bench.sh   # every workload at a tenth of its size
#
# Arguments are passed to weir-bench (the first: the docs directory to write to).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WEIR_ROOT"

bash scripts/setup.sh
bash scripts/build-plugins.sh
# The chart is drawn with matplotlib; only the benchmark needs it.
if ! python3 -c "import matplotlib" >/dev/null 2>&1; then
    log "installing matplotlib (for the benchmark chart)"
    python3 -m pip install --quiet matplotlib
fi
log "building weir and the harness (release)"
cargo build --release --locked -p weir --bin weir -p weir-tests --bin weir-bench
exec "$CARGO_TARGET_DIR/release/weir-bench" "$@"
