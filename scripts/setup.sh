#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages that building and testing mqttx
# needs, starting from a minimal system (debootstrap --variant=minbase: no
# compiler, no cmake), and the aedes broker of the interop tests (from npm, pinned by
# scripts/aedes/package-lock.json). Idempotent: when everything is installed it
# does nothing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
    g++ make cmake ninja-build ccache pkg-config
    libpaho-mqttpp-dev libpaho-mqtt-dev libspdlog-dev libfmt-dev libssl-dev openssl
    nlohmann-json3-dev libhiredis-dev zlib1g-dev libcpp-httplib-dev libmosquitto-dev
    libtomlplusplus-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    mosquitto mosquitto-clients redis-server procps prometheus
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == *" ok installed" ]] || missing+=("$pkg")
done
# Node.js runs aedes: Debian's nodejs and npm, unless node and npm are there already
# (another build of Node.js, which Debian's npm would conflict with).
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

aedes=scripts/aedes
install_aedes() {
    # npm ci writes node_modules/.package-lock.json: older than the lock, it is stale.
    local installed=$aedes/node_modules/.package-lock.json
    [[ -f $installed && ! $aedes/package-lock.json -nt $installed ]] && return 0
    echo "setup: installing the aedes broker into $aedes/node_modules (npm ci)"
    local npm_log
    npm_log=$(mktemp /tmp/mqttx-setup-npm-XXXXXX.log)
    if ! npm ci --prefix "$aedes" --no-audit --no-fund >"$npm_log" 2>&1 </dev/null; then
        cat "$npm_log" >&2
        echo "setup: npm ci failed (log above, kept in $npm_log)" >&2
        exit 1
    fi
    rm -f "$npm_log"
}

if ((${#missing[@]} == 0)); then
    install_aedes
    echo "setup: all ${#packages[@]} required packages and aedes are installed; nothing to do"
    exit 0
fi

if ((EUID != 0)); then
    echo "setup: missing packages: ${missing[*]}" >&2
    echo "setup: run this script as root (sudo $0) or install them with apt-get" >&2
    exit 1
fi

echo "setup: apt-get update, then installing the missing packages: ${missing[*]}"
log=$(mktemp /tmp/mqttx-setup-XXXXXX.log)
export DEBIAN_FRONTEND=noninteractive
# The packages bring daemons (prometheus would listen on every interface, mosquitto and
# redis on their default ports); the tests start their own on loopback, so none is
# started on install. policy-rc.d is Debian's switch for that, honoured with systemd too.
policy=/usr/sbin/policy-rc.d
own_policy=false
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# mqttx scripts/setup.sh: no service starts while it installs\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=true
    trap 'rm -f "$policy"' EXIT
fi
status=0
{ apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } \
    >"$log" 2>&1 </dev/null || status=$?
if $own_policy; then rm -f "$policy"; fi
if ((status != 0)); then
    cat "$log" >&2
    echo "setup: apt-get failed (log above, kept in $log)" >&2
    exit 1
fi
rm -f "$log"
install_aedes
