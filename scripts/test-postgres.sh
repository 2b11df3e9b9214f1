#!/usr/bin/env bash
# Runs the source suites (types, replication protocol and streaming, snapshot,
# heartbeat, precheck, TLS) and the schema-change suite against each PostgreSQL
# major version given, or against every version of tests/postgres/versions but
# the default (which the whole suite already ran on).
#
#   scripts/test-postgres.sh            # every version but the default
#   scripts/test-postgres.sh 13 18      # only these
#
# The whole suite against one version: WEIR_TEST_PG=13 scripts/test.sh
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WEIR_ROOT"

# pipeline_ddl too: DDL capture, publications kept in step and tables joining
# them differ by version (schema publications from 15, logical messages from 14).
# pipeline_failover: base backups and timelines differ by version (failover slots
# from 17; before, its slot-lost and divergence tests still apply).
SOURCE_SUITES=(source_control source_library source_replication source_snapshot source_stage source_streaming
    source_tls source_types source_versions pipeline_ddl pipeline_failover)
majors=("$@")
if [ ${#majors[@]} -eq 0 ]; then
    default=$(pg_default_major)
    for major in $(pg_majors); do
        [ "$major" = "${WEIR_TEST_PG:-$default}" ] || majors+=("$major")
    done
fi
bash scripts/fetch-postgres.sh "${majors[@]}"
# The suites are modules of the one integration-test binary `it`: filter by module path.
args=()
for suite in "${SOURCE_SUITES[@]}"; do
    args+=("$suite::")
done
# The tests spawn the weir binary; `cargo test -p weir-tests` does not build it, the
# workspace's test build does (nothing to do after scripts/test.sh).
cargo test --workspace --locked --no-run
for major in "${majors[@]}"; do
    log "source suites against PostgreSQL $major"
    WEIR_TEST_PG=$major cargo test -p weir-tests --locked --test it -- "${args[@]}"
done
