#!/usr/bin/env bash
# Builds every plugin in plugins/ for wasm32-wasip2 into one shared target dir and
# collects the components in $WEIR_PLUGIN_DIR as <crate-name>.wasm.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log "building plugins for wasm32-wasip2"
cargo build --manifest-path "$WEIR_ROOT/plugins/Cargo.toml" --workspace \
    --target wasm32-wasip2 --release --target-dir "$WEIR_PLUGIN_TARGET_DIR" "$@"

mkdir -p "$WEIR_PLUGIN_DIR"
out="$WEIR_PLUGIN_TARGET_DIR/wasm32-wasip2/release"
for manifest in "$WEIR_ROOT"/plugins/*/Cargo.toml; do
    name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n1)
    artifact="$out/${name//-/_}.wasm"
    [ -f "$artifact" ] || { echo "plugin $name built no $artifact" >&2; exit 1; }
    cp "$artifact" "$WEIR_PLUGIN_DIR/$name.wasm"
    log "plugin $name -> $WEIR_PLUGIN_DIR/$name.wasm ($(wc -c < "$artifact") bytes)"
done
