#!/usr/bin/env bash
# Runs a Python weir plugin's tests with pytest:  test.sh PROJECT [pytest args]
set -euo pipefail
sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$1" && pwd)
shift
cd "$project"
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$project:$sdk${PYTHONPATH:+:$PYTHONPATH}" python3 -m pytest -q -p no:cacheprovider "$@"
