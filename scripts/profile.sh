#!/usr/bin/env bash
# Profiles one workload of the benchmark harness: records every CPU with perf while
# weir (sql-filter + mask, Avro) reads the workload, and draws the samples as a flame
# graph. PostgreSQL's walsender, the broker and weir share the machine, so the graph
# shows all of them, each under its process name.
#
#   scripts/profile.sh single             # writes docs/bench/flame-single.svg
#   scripts/profile.sh toast /tmp/flames  # into another directory
#
# The collapsed stacks are kept next to the graph (flame-WORKLOAD.folded, not
# committed): `inferno-diff-folded before.folded after.folded | inferno-flamegraph`
# shows what a change moved.
#
# Workloads: inserts, single, mix, wide, toast (see tests/src/bin/weir-bench). Call
# stacks are unwound from DWARF (weir's release build has debug info and no frame
# pointers), sampled at 499 Hz (each sample copies 16 KiB of stack). Profiling every CPU
# needs root or kernel.perf_event_paranoid = -1.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
workload=${1:?usage: scripts/profile.sh WORKLOAD [OUT_DIR]}
out=${2:-$WEIR_ROOT/docs/bench}
cd "$WEIR_ROOT"

bash scripts/setup.sh
bash scripts/build-plugins.sh
if ! command -v perf >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing linux-perf"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
fi
if ! command -v inferno-flamegraph >/dev/null 2>&1; then
    log "installing inferno (flame graphs)"
    cargo install --quiet --locked inferno --version 0.12.8 --no-default-features --features cli
fi
log "building weir, the broker and the harness (release)"
cargo build --release --locked -p weir --bin weir -p weir-tests --bin weir-bench --bin weir-dev-broker

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
WEIR_BENCH_WORKLOADS=$workload WEIR_BENCH_RUNS=1 WEIR_BENCH_LATENCY_SECONDS=1 \
    "$CARGO_TARGET_DIR/release/weir-bench" "$scratch/docs" &
bench=$!
# The recording covers the Avro reader's process, from its start to its exit.
reader="weir run .*/full.yaml"
until pid=$(pgrep -f "$reader" | head -1) && [ -n "$pid" ]; do
    kill -0 "$bench" 2>/dev/null || { wait "$bench"; log "the harness ended before weir started"; exit 1; }
    sleep 0.01
done
log "recording while weir (pid $pid) reads $workload"
perf record --all-cpus --call-graph dwarf,16384 -F 499 -o "$scratch/perf.data" \
    -- sh -c "while kill -0 $pid 2>/dev/null; do sleep 0.02; done" 2>"$scratch/perf.log" >/dev/null
wait "$bench"

log "drawing the flame graph"
mkdir -p "$out"
# --no-inline: resolving inlined frames runs addr2line over weir's debug info,
# which takes minutes.
perf script --no-inline -i "$scratch/perf.data" 2>/dev/null |
    inferno-collapse-perf --all >"$out/flame-$workload.folded"
inferno-flamegraph --title "$workload: every CPU while weir (sql-filter + mask, Avro) reads" \
    <"$out/flame-$workload.folded" >"$out/flame-$workload.svg"
log "wrote $out/flame-$workload.svg"
