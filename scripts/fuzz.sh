#!/usr/bin/env bash
# Fuzzes the pgoutput decoder: arbitrary bytes must give an error, never a panic.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60). Installs cargo-fuzz when missing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd "$WEIR_ROOT/pgoutput"
# cargo-fuzz passes -Z flags; stable rustc accepts them with RUSTC_BOOTSTRAP.
RUSTC_BOOTSTRAP=1 cargo fuzz run decode --sanitizer none --target-dir "$HOME/.cache/weir/fuzz-target" \
    -- -max_total_time="$seconds"
