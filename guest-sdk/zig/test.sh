#!/usr/bin/env bash
# Runs a Zig weir plugin's tests (the `test` blocks of plugin.zig) natively with
# `zig test`:  test.sh PROJECT
set -euo pipefail
sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$1" && pwd)
# Zig caches under the working directory unless told otherwise: keep clones clean.
export ZIG_LOCAL_CACHE_DIR=${ZIG_LOCAL_CACHE_DIR:-$HOME/.cache/weir/zig-cache}
cd "$project"
python3 -m ziglang test --dep weir -Mroot="$project/plugin.zig" -Mweir="$sdk/weir.zig"
