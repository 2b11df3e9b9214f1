#!/usr/bin/env bash
# Runs weir's whole test suite: installs what is missing, builds the wasm plugins, checks
# formatting and lints, fuzzes the pgoutput decoder briefly, then runs every test (unit,
# harness and end-to-end against real PostgreSQL servers and Apache Kafka brokers the
# tests start themselves) on the default PostgreSQL version, and the source suites on
# every other version of tests/postgres/versions.
#
# Extra arguments go to `cargo test` for the workspace, e.g. `scripts/test.sh -p weir-tests`.
#   WEIR_TEST_PG=13 scripts/test.sh          # the whole suite on PostgreSQL 13
#   WEIR_TEST_PG_MATRIX=0 scripts/test.sh    # skip the other versions
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WEIR_ROOT"

bash scripts/setup.sh
bash scripts/build-plugins.sh

log "checking formatting"
cargo fmt --all -- --check
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check

log "linting"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The guest SDK's worlds are features; plugins enable one each, so lint each alone.
for world in batch row; do
    cargo clippy -p weir-guest --features "$world" --all-targets --locked -- -D warnings
done
cargo clippy --manifest-path plugins/Cargo.toml --workspace --target wasm32-wasip2 --locked \
    --target-dir "$WEIR_PLUGIN_TARGET_DIR" -- -D warnings

log "testing the plugins natively"
cargo test --manifest-path plugins/Cargo.toml --workspace --locked \
    --target-dir "$WEIR_PLUGIN_TARGET_DIR"

log "testing the Python, JavaScript, Go and Zig plugins natively"
for dir in plugins/*/; do
    language=$(plugin_language "$dir")
    [ -n "$language" ] || continue
    log "plugin $(basename "$dir") ($language)"
    bash "guest-sdk/$language/test.sh" "$dir"
    if [ "$language" = go ]; then
        (cd "$dir" && go vet ./...)
    fi
done
(cd guest-sdk/go && go vet ./...)
unformatted=$(gofmt -l guest-sdk/go plugins)
[ -z "$unformatted" ] || { echo "gofmt: not formatted: $unformatted" >&2; exit 1; }
python3 -m ziglang fmt --check guest-sdk/zig plugins

log "fuzzing the pgoutput decoder for 20 seconds"
fuzz_log=$(mktemp)
if ! bash scripts/fuzz.sh 20 >"$fuzz_log" 2>&1; then
    tail -n 60 "$fuzz_log"
    rm -f "$fuzz_log"
    exit 1
fi
grep -E "^Done" "$fuzz_log" || true
rm -f "$fuzz_log"

log "testing the workspace"
# The integration tests spawn the weir binary: host's own integration test makes
# cargo build it here, with the workspace's features (a separate `cargo build -p
# weir` resolves features differently and compiles the big dependencies twice).
cargo test --workspace --locked "$@"
# The SDK's examples (doc tests) per world.
for world in batch row; do
    cargo test -p weir-guest --features "$world" --doc --locked
done

default_pg=${WEIR_TEST_PG:-$(pg_default_major)}
tested=("$default_pg")
if [ "${WEIR_TEST_PG_MATRIX:-1}" != 0 ]; then
    bash scripts/test-postgres.sh
    mapfile -t tested < <(pg_majors)
fi
echo "tested against: kafka $KAFKA_VERSION; postgresql ${tested[*]}"
