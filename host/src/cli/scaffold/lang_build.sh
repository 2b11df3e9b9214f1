#!/usr/bin/env bash
# Builds {{name}}.wasm with the SDK copied into weir-sdk/ (weir's scripts/setup.sh
# installs the toolchain it needs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash weir-sdk/build.sh . {{name}}.wasm
echo "built {{name}}.wasm"
