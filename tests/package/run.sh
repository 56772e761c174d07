#!/usr/bin/env bash
# Installs a built mqttx into a temporary prefix, checks the installed bridge program,
# builds the consumer project in tests/package against it, and runs it against a
# throwaway mosquitto.
#   tests/package/run.sh <build_dir> <source_dir>
# The exit code is the consumer's.
set -euo pipefail

if (($# != 2)); then
    echo "usage: $0 <build_dir> <source_dir>" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
source_dir=$(cd "$2" && pwd)

# shellcheck source=scripts/lib/mosquitto.sh
source "$source_dir/scripts/lib/mosquitto.sh"

work=$(mktemp -d /tmp/mqttx-package-XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    mqttx_stop_mosquitto
    rm -rf "$work"
}
trap cleanup EXIT

prefix=$work/prefix
consumer_build=$work/build

cmake --install "$build_dir" --prefix "$prefix"

# The bridge program, when built, comes with its sample configs and its systemd unit.
if grep -q '^MQTTX_BUILD_BRIDGE:BOOL=ON' "$build_dir/CMakeCache.txt"; then
    "$prefix/bin/mqttx-bridge" --version
    SITE_BROKER=tcp://127.0.0.1:1 CLOUD_BROKER=tcp://127.0.0.1:2 STATE_DIRECTORY=$work \
        "$prefix/bin/mqttx-bridge" --check --config "$prefix/share/doc/mqttx/mqttx-bridge/bridge.toml"
    grep -q '^ExecStart=/.*/mqttx-bridge --config' "$prefix/lib/systemd/system/mqttx-bridge.service"
fi

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$source_dir/tests/package" -B "$consumer_build" -G Ninja \
    -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}"
cmake --build "$consumer_build"

mqttx_start_mosquitto
status=0
"$consumer_build/consumer" "$MQTTX_BROKER" || status=$?
exit "$status"
