#!/usr/bin/env bash
# Runs a JavaScript weir plugin's tests with node's test runner:  test.sh PROJECT
# The tests import "./weir.js" and "./testing.js" beside plugin.js, as the component
# does; this script puts the SDK's copies there for the run.
set -euo pipefail
sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$1" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r "$project"/. "$stage"/
rm -rf "$stage/weir-sdk"
cp "$sdk/weir.js" "$sdk/testing.js" "$stage"/
cd "$stage"
node --test
