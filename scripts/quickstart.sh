#!/usr/bin/env bash
# The README's first command: installs what is missing, builds weir, then runs the
# quickstart (local PostgreSQL, local broker, sample writes, the resulting changes shown).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WEIR_ROOT"

bash scripts/setup.sh
log "building weir and the local broker (the first build takes a while)"
cargo build --workspace --bins --locked
exec "$CARGO_TARGET_DIR/debug/weir-quickstart" "$@"
