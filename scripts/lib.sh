# Shared by the scripts in this folder: where builds and caches live.
# Build output is kept outside the clone so a fresh clone in CI reuses it.
WEIR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export WEIR_ROOT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/weir/target}
# The wasm plugins share one target dir of their own, so building them never waits on
# the host build's lock.
export WEIR_PLUGIN_TARGET_DIR=${WEIR_PLUGIN_TARGET_DIR:-$HOME/.cache/weir/plugins-target}
# Where built plugin components are collected (one <name>.wasm each).
export WEIR_PLUGIN_DIR=${WEIR_PLUGIN_DIR:-$WEIR_PLUGIN_TARGET_DIR/components}
# C plugin toolchain: wit-bindgen's C generator (the version weir-guest uses) and the
# WASI preview1 adapter of weir's wasmtime version.
export WIT_BINDGEN_VERSION=0.63.0
export WASI_ADAPTER_VERSION=48.0.8
export WASI_ADAPTER=${WASI_ADAPTER:-$HOME/.cache/weir/wasi_snapshot_preview1.reactor.$WASI_ADAPTER_VERSION.wasm}
# Toolchains of the Python, JavaScript, Zig and Go plugins (guest-sdk/<language>/).
export COMPONENTIZE_PY_VERSION=0.25.1
export COMPONENTIZE_JS_VERSION=0.23.0
export ZIG_VERSION=0.17.1
export WEIR_NODE_HOME=${WEIR_NODE_HOME:-$HOME/.cache/weir/node}
export WEIR_GO_WIT_PKG=${WEIR_GO_WIT_PKG:-$HOME/.cache/weir/go-wit-pkg/$WIT_BINDGEN_VERSION}
# Apache Kafka, as the tests, the quickstart and the benchmarks run it: the jars of the
# version pinned in tests/kafka/version (scripts/fetch-kafka.sh puts them there).
KAFKA_VERSION=$(tr -d '[:space:]' <"$WEIR_ROOT/tests/kafka/version")
export KAFKA_VERSION
export WEIR_KAFKA_HOME=${WEIR_KAFKA_HOME:-$HOME/.cache/weir/kafka/$KAFKA_VERSION}
# The JVM programs the conformance tests judge weir's output with (scripts/fetch-judges.sh),
# in a directory named by a digest of their sources and POM.
WEIR_JUDGES_DIGEST=$(cd "$WEIR_ROOT/tests/jvm" && find . -type f ! -path './target/*' -print0 | sort -z |
    xargs -0 sha256sum | sha256sum | cut -c1-16)
export WEIR_JUDGES_HOME=${WEIR_JUDGES_HOME:-$HOME/.cache/weir/judges/$WEIR_JUDGES_DIGEST}
# PostgreSQL servers other than Debian's, one directory a major version
# (scripts/fetch-postgres.sh), and the major version the tests use (WEIR_TEST_PG).
export WEIR_PG_CACHE=${WEIR_PG_CACHE:-$HOME/.cache/weir/pg}
# The lines of tests/postgres/versions without comments and blanks
# (`<major> <source> [default]`), its major versions in order, and the default.
pg_versions() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$WEIR_ROOT/tests/postgres/versions"; }
pg_majors() { pg_versions | awk '{print $1}'; }
pg_default_major() { pg_versions | awk '$3 == "default" {print $1}'; }
if [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

# The language of a plugin in plugins/ built by guest-sdk/<language>/build.sh
# (python, js, go or zig), or nothing for the Rust and C plugins.
plugin_language() {
    local dir=$1
    if [ -f "$dir/plugin.py" ]; then echo python
    elif [ -f "$dir/plugin.js" ]; then echo js
    elif [ -f "$dir/go.mod" ]; then echo go
    elif [ -f "$dir/plugin.zig" ]; then echo zig
    fi
}

log() { printf '==> %s\n' "$*" >&2; }
