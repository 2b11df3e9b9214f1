#!/usr/bin/env bash
# Builds every plugin in plugins/ into a WebAssembly component and collects them in
# $WEIR_PLUGIN_DIR as <name>.wasm: the Rust crates for wasm32-wasip2 in one shared
# target dir, the C plugins (plugins/<name>/plugin.c, against the row-plugin world)
# with clang, wit-bindgen's C bindings and wasm-tools; then the Python, JavaScript,
# Go and Zig plugins (below).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

log "building plugins for wasm32-wasip2"
cargo build --manifest-path "$WEIR_ROOT/plugins/Cargo.toml" --workspace \
    --target wasm32-wasip2 --release --target-dir "$WEIR_PLUGIN_TARGET_DIR" "$@"

mkdir -p "$WEIR_PLUGIN_DIR"
out="$WEIR_PLUGIN_TARGET_DIR/wasm32-wasip2/release"
for manifest in "$WEIR_ROOT"/plugins/*/Cargo.toml; do
    [ -f "$manifest" ] || continue
    name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -n1)
    artifact="$out/${name//-/_}.wasm"
    [ -f "$artifact" ] || { echo "plugin $name built no $artifact" >&2; exit 1; }
    cp "$artifact" "$WEIR_PLUGIN_DIR/$name.wasm"
    log "plugin $name -> $WEIR_PLUGIN_DIR/$name.wasm ($(wc -c < "$artifact") bytes)"
done

for source in "$WEIR_ROOT"/plugins/*/plugin.c; do
    [ -f "$source" ] || continue
    name=$(basename "$(dirname "$source")")
    work="$WEIR_PLUGIN_TARGET_DIR/c/$name"
    rm -rf "$work"
    mkdir -p "$work"
    wit-bindgen c "$WEIR_ROOT/guest-sdk/wit" --world row-plugin --out-dir "$work" >/dev/null 2>&1
    clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Werror -I"$work" \
        -o "$work/core.wasm" "$source" "$work/row_plugin.c" "$work/row_plugin_component_type.o" \
        -Wl,--strip-debug
    wasm-tools component new "$work/core.wasm" --adapt "wasi_snapshot_preview1=$WASI_ADAPTER" \
        -o "$WEIR_PLUGIN_DIR/$name.wasm"
    log "plugin $name (C) -> $WEIR_PLUGIN_DIR/$name.wasm ($(wc -c < "$WEIR_PLUGIN_DIR/$name.wasm") bytes)"
done

# Plugins in Python, JavaScript, Go and Zig: plugins/<name>/ holding plugin.py,
# plugin.js, go.mod or plugin.zig, built by guest-sdk/<language>/build.sh. A build
# is kept under a digest of everything that goes into it (the plugin's files, the
# SDK, the WIT contract, the toolchain versions), so an unchanged plugin is copied,
# not rebuilt (a Python component takes ~15 s and weighs ~18 MB); weir keeps the
# compiled form of each component in its own cache, keyed by the file's content.
digest_of() {
    local dir=$1 language=$2
    {
        echo "$language $COMPONENTIZE_PY_VERSION $COMPONENTIZE_JS_VERSION $ZIG_VERSION $WIT_BINDGEN_VERSION $WASI_ADAPTER_VERSION"
        go version 2>/dev/null || true
        (cd "$WEIR_ROOT" && find "plugins/$(basename "$dir")" "guest-sdk/$language" guest-sdk/wit -type f \
            ! -name '*.pyc' ! -path '*/node_modules/*' ! -path '*/.zig-cache/*' -print0 |
            sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -c1-16
}

for dir in "$WEIR_ROOT"/plugins/*/; do
    dir=${dir%/}
    language=$(plugin_language "$dir")
    [ -n "$language" ] || continue
    name=$(basename "$dir")
    cached="$WEIR_PLUGIN_TARGET_DIR/$language/$name-$(digest_of "$dir" "$language").wasm"
    if [ -f "$cached" ]; then
        log "plugin $name ($language) unchanged"
    else
        log "building plugin $name ($language)"
        mkdir -p "$(dirname "$cached")"
        rm -f "$WEIR_PLUGIN_TARGET_DIR/$language/$name"-*.wasm
        bash "$WEIR_ROOT/guest-sdk/$language/build.sh" "$dir" "$cached.tmp"
        mv "$cached.tmp" "$cached"
    fi
    cp "$cached" "$WEIR_PLUGIN_DIR/$name.wasm"
    log "plugin $name ($language) -> $WEIR_PLUGIN_DIR/$name.wasm ($(wc -c <"$cached") bytes)"
done
