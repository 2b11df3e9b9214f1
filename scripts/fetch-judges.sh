#!/usr/bin/env bash
# Builds the JVM programs that judge weir's output (tests/jvm: Debezium's embedded engine
# as the oracle, Flink's formats, Canal's, DTS's and Paimon's readers, Kafka Connect with
# Debezium's JDBC sink) from Maven Central into $WEIR_JUDGES_HOME: weir-judges.jar, libs/
# and paimon/ (Paimon's bundle, kept apart). The directory is
# named by a digest of tests/jvm, so a change there builds afresh and an unchanged tree is
# skipped.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The tests find the build through `current` when WEIR_JUDGES_HOME is not set.
link_current() { ln -sfn "$(basename "$WEIR_JUDGES_HOME")" "$(dirname "$WEIR_JUDGES_HOME")/current"; }
if [ -f "$WEIR_JUDGES_HOME/complete" ]; then
    link_current
    log "JVM judges (Debezium, Flink, Kafka Connect) present"
    exit 0
fi
log "building the JVM judges (Debezium, Flink, Kafka Connect) from Maven Central"
mkdir -p "$(dirname "$WEIR_JUDGES_HOME")"
staging=$(mktemp -d "$(dirname "$WEIR_JUDGES_HOME")/.fetch.XXXXXX")
trap 'rm -rf "$staging"' EXIT
maven=(mvn -q -B -Dstyle.color=never -s "$WEIR_ROOT/tests/jvm/settings.xml" -f "$WEIR_ROOT/tests/jvm/pom.xml"
    -Djudges.out="$staging/build")
# Maven's own output is shown only when it fails.
if ! "${maven[@]}" package dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$staging/libs" >"$staging/mvn.log" 2>&1; then
    cat "$staging/mvn.log" >&2
    exit 1
fi
mv "$staging/build/weir-judges.jar" "$staging/weir-judges.jar"
# Paimon's bundle carries its own Flink classes: only its judge's classpath has it.
mv "$staging/build/paimon" "$staging/paimon"
rm -rf "$staging/build" "$staging/mvn.log"
touch "$staging/complete"
rm -rf "$WEIR_JUDGES_HOME"
mv "$staging" "$WEIR_JUDGES_HOME"
trap - EXIT
link_current
log "JVM judges in $WEIR_JUDGES_HOME ($(du -sh "$WEIR_JUDGES_HOME" | cut -f1))"
