#!/usr/bin/env bash
# Installs what weir's build, tests and quickstart need on a fresh Debian machine.
# Idempotent: everything already present is skipped, so a second run installs nothing.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Debian packages:
#   postgresql, postgresql-15-wal2json  the server the tests start, and an independent decoder
#   kcat                                an independent Kafka client to read topics back
#   libssl-dev, pkg-config              TLS to PostgreSQL and Kafka (rdkafka `ssl`, openssl crates)
#   openssl                             the command that makes throwaway certificates for TLS tests
#   make, gcc, g++, zlib1g-dev, perl    building the bundled librdkafka
APT_PACKAGES=(postgresql postgresql-15-wal2json kcat libssl-dev openssl pkg-config make gcc g++ zlib1g-dev perl)

missing=()
for package in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "Debian packages present"
fi
# The Debian package starts a cluster of its own; weir's tests and quickstart start
# theirs on other ports, so the packaged one is left as it is.

if ! command -v rustup >/dev/null 2>&1 || ! command -v cargo >/dev/null 2>&1; then
    echo "setup: rustup and cargo are required (this machine kind ships them)" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    log "adding the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
else
    log "wasm32-wasip2 target present"
fi
