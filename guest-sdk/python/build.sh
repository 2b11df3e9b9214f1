#!/usr/bin/env bash
# Builds a Python weir plugin into a component:  build.sh PROJECT OUT.wasm
# PROJECT holds plugin.py (and any modules it imports); this SDK directory adds
# weir_plugin (the API) and weir_component (the adapter to the row-plugin world).
# Needs componentize-py (weir's scripts/setup.sh installs it). Components are ≈18 MB
# (CPython inside); weir compiles one once and keeps the compiled form cached.
set -euo pipefail
sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$1" && pwd)
out=$2
wit=$sdk/wit
[ -d "$wit" ] || wit=$sdk/../wit
[ -f "$project/plugin.py" ] || { echo "build.sh: $project has no plugin.py" >&2; exit 1; }
componentize-py -d "$wit" -w row-plugin componentize weir_component \
    -p "$project" -p "$sdk" -o "$out" >/dev/null
