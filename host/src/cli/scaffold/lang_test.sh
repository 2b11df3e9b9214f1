#!/usr/bin/env bash
# Runs {{name}}'s tests natively, in the language's own test runner.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash weir-sdk/test.sh .
