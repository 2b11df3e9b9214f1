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
if [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

log() { printf '==> %s\n' "$*" >&2; }
