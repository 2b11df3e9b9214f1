#!/usr/bin/env bash
# Builds a Go weir plugin into a component:  build.sh PROJECT OUT.wasm
# PROJECT is a Go module whose root package registers the plugin (weir.Register in
# an init function). The component is a wasip1 reactor (`go:wasmexport`) made a
# component with WASI's preview1 adapter; the bindings come from `wit-bindgen go`,
# their runtime package from the wit-bindgen-go crate ($WEIR_GO_WIT_PKG), and this
# SDK's glue/export.go.in connects them to the plugin. weir's scripts/setup.sh
# installs every tool used here.
set -euo pipefail
sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$1" && pwd)
out=$(realpath -m "$2")
wit=$sdk/wit
[ -d "$wit" ] || wit=$sdk/../wit
adapter=${WASI_ADAPTER:-$HOME/.cache/weir/wasi_snapshot_preview1.reactor.48.0.8.wasm}
runtime=${WEIR_GO_WIT_PKG:-$HOME/.cache/weir/go-wit-pkg/0.63.0}
[ -f "$runtime/go.mod" ] || { echo "build.sh: no wit runtime package at $runtime (run weir's scripts/setup.sh)" >&2; exit 1; }
module=$(sed -n 's/^module[[:space:]]*//p' "$project/go.mod" | tr -d '"[:space:]')
[ -n "$module" ] || { echo "build.sh: $project/go.mod names no module" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bindings=$(wit-bindgen go "$wit" --world row-plugin --out-dir "$work" --generate-stubs 2>&1) || { echo "$bindings" >&2; exit 1; }
sed "s|{{plugin}}|$module|" "$sdk/glue/export.go.in" >"$work/export_weir_plugin_row/wit_bindings.go"
cat >>"$work/go.mod" <<MOD
require (
    weir.dev/plugin v0.0.0
    $module v0.0.0
)
replace go.bytecodealliance.org/pkg => $runtime
replace weir.dev/plugin => $sdk
replace $module => $project
MOD
# `-checklinkname=0`: the runtime package allocates with runtime.sbrk before the Go
# runtime starts, through a linkname Go refuses by default.
(cd "$work" && GOFLAGS=-mod=mod GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared \
    -ldflags=-checklinkname=0 -trimpath -o core.wasm .)
wasm-tools component embed "$wit" --world row-plugin "$work/core.wasm" -o "$work/embedded.wasm"
wasm-tools component new "$work/embedded.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"
