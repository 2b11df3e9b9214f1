#!/usr/bin/env bash
# Builds {{name}}.wasm from plugin.c: bindings from wit-bindgen, clang for
# wasm32-wasi, then wasm-tools makes the core module a component with WASI's
# preview1 adapter. weir's scripts/setup.sh installs every tool used here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ADAPTER=${WASI_ADAPTER:-$HOME/.cache/weir/wasi_snapshot_preview1.reactor.48.0.8.wasm}
mkdir -p build
wit-bindgen c wit --world row-plugin --out-dir build >/dev/null
clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror -Ibuild \
    -o build/core.wasm plugin.c build/row_plugin.c build/row_plugin_component_type.o \
    -Wl,--strip-debug
wasm-tools component new build/core.wasm --adapt "wasi_snapshot_preview1=$ADAPTER" \
    -o {{name}}.wasm
echo "built {{name}}.wasm"
