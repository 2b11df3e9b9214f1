#!/usr/bin/env bash
# The README's first command: installs what is missing, builds weir and its plugins,
# then runs the quickstart (local PostgreSQL, local broker, `weir run
# examples/quickstart.yaml`, sample writes, the resulting Kafka messages shown).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WEIR_ROOT"

bash scripts/setup.sh
bash scripts/build-plugins.sh
log "building weir and the local broker (the first build takes a while)"
cargo build --workspace --bins --locked
exec "$CARGO_TARGET_DIR/debug/weir-quickstart" "$@"
