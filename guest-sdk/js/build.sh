#!/usr/bin/env bash
# Builds a JavaScript weir plugin into a component:  build.sh PROJECT OUT.wasm
# PROJECT holds plugin.js (an ES module importing "./weir.js"); this SDK directory
# adds weir.js (the API) and component.js (the adapter to the row-plugin world).
# Needs @bytecodealliance/componentize-js (weir's scripts/setup.sh installs it under
# $WEIR_NODE_HOME, default ~/.cache/weir/node).
set -euo pipefail
sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$1" && pwd)
out=$(realpath -m "$2")
wit=$sdk/wit
[ -d "$wit" ] || wit=$sdk/../wit
componentize=${WEIR_NODE_HOME:-$HOME/.cache/weir/node}/node_modules/.bin/componentize-js
[ -x "$componentize" ] || componentize=$(command -v componentize-js) ||
    { echo "build.sh: componentize-js not found (run weir's scripts/setup.sh)" >&2; exit 1; }
[ -f "$project/plugin.js" ] || { echo "build.sh: $project has no plugin.js" >&2; exit 1; }
# componentize-js reads one entry module and the files it imports: gather the
# project's modules and the SDK's in one directory.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r "$project"/. "$stage"/
rm -rf "$stage/node_modules" "$stage/weir-sdk"
cp "$sdk/weir.js" "$sdk/component.js" "$stage"/
# `-d http fetch-event`: the plugin imports only weir's host interface and WASI's
# basics, not wasi:http.
"$componentize" "$stage/component.js" --wit "$wit" -n row-plugin -d http fetch-event -o "$out" >/dev/null
