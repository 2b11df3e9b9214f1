#!/usr/bin/env bash
# Builds a Zig weir plugin into a component:  build.sh PROJECT OUT.wasm
# PROJECT holds plugin.zig (importing "weir"); this SDK directory adds weir.zig (the
# API) and component.zig (the adapter to the row-plugin world over the C bindings of
# `wit-bindgen c`, translated with `zig translate-c`). Needs Zig (PyPI `ziglang`),
# wit-bindgen and wasm-tools, and WASI's preview1 reactor adapter ($WASI_ADAPTER),
# all installed by weir's scripts/setup.sh.
set -euo pipefail
sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$1" && pwd)
out=$(realpath -m "$2")
wit=$sdk/wit
[ -d "$wit" ] || wit=$sdk/../wit
adapter=${WASI_ADAPTER:-$HOME/.cache/weir/wasi_snapshot_preview1.reactor.48.0.8.wasm}
zig=(python3 -m ziglang)
export ZIG_LOCAL_CACHE_DIR=${ZIG_LOCAL_CACHE_DIR:-$HOME/.cache/weir/zig-cache}
[ -f "$project/plugin.zig" ] || { echo "build.sh: $project has no plugin.zig" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bindings=$(wit-bindgen c "$wit" --world row-plugin --out-dir "$work" 2>&1) || { echo "$bindings" >&2; exit 1; }
"${zig[@]}" translate-c -I"$work" "$work/row_plugin.h" -target wasm32-wasi -lc >"$work/c.zig"
(cd "$work" && "${zig[@]}" build-exe -target wasm32-wasi -O ReleaseSmall -fno-entry \
    -mexec-model=reactor -rdynamic -lc -I"$work" --name core \
    --dep c --dep weir --dep plugin -Mroot="$sdk/component.zig" \
    "$work/row_plugin.c" "$work/row_plugin_component_type.o" \
    -Mc="$work/c.zig" --dep weir -Mplugin="$project/plugin.zig" -Mweir="$sdk/weir.zig")
wasm-tools component new "$work/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"
