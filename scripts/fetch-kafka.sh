#!/usr/bin/env bash
# Fetches the Apache Kafka broker pinned in tests/kafka/version from Maven Central into
# $WEIR_KAFKA_HOME/libs (kafka_2.13 and its runtime dependencies, through
# tests/kafka/pom.xml). Skips the fetch when it is complete; afterwards the tests,
# the quickstart and the benchmarks start brokers from there, offline.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -f "$WEIR_KAFKA_HOME/complete" ]; then
    log "Apache Kafka $KAFKA_VERSION present"
    exit 0
fi
log "fetching Apache Kafka $KAFKA_VERSION from Maven Central"
mkdir -p "$(dirname "$WEIR_KAFKA_HOME")"
staging=$(mktemp -d "$(dirname "$WEIR_KAFKA_HOME")/.fetch.XXXXXX")
trap 'rm -rf "$staging"' EXIT
# Maven's own output (colour resets even in batch mode) is shown only when it fails.
if ! mvn -q -B -Dstyle.color=never -f "$WEIR_ROOT/tests/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$staging/libs" \
    >"$staging/mvn.log" 2>&1; then
    cat "$staging/mvn.log" >&2
    exit 1
fi
rm -f "$staging/mvn.log"
[ -f "$staging/libs/kafka_2.13-$KAFKA_VERSION.jar" ] || {
    echo "fetch-kafka: Maven copied no kafka_2.13-$KAFKA_VERSION.jar" >&2
    exit 1
}
echo "$KAFKA_VERSION" >"$staging/complete"
rm -rf "$WEIR_KAFKA_HOME"
mv "$staging" "$WEIR_KAFKA_HOME"
trap - EXIT
log "Apache Kafka $KAFKA_VERSION in $WEIR_KAFKA_HOME ($(du -sh "$WEIR_KAFKA_HOME" | cut -f1))"
