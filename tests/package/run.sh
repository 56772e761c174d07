#!/usr/bin/env bash
# Installs a built mqttx into a temporary prefix, checks the installed bridge program,
# builds the consumer in tests/package three ways (find_package with the http component,
# pkg-config, add_subdirectory of the source tree) and runs each against a throwaway
# mosquitto.
#   tests/package/run.sh <build_dir> <source_dir>
# Fails at the first consumer that does not build or whose round trip fails.
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
compiler=(g++)
if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    compiler=(ccache g++)
fi
# 1. find_package(mqttx CONFIG REQUIRED COMPONENTS http) against the installed package.
cmake -S "$source_dir/tests/package" -B "$consumer_build" -G Ninja \
    -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}"
cmake --build "$consumer_build"

# 2. pkg-config, the installed mqttx-http.pc (which requires mqttx.pc); the libraries
# are static, so --static brings their private dependencies.
pc=$(find "$prefix" -name mqttx.pc)
[[ -n $pc ]] || { echo "mqttx.pc was not installed" >&2; exit 1; }
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs --static mqttx-http)
read -r -a pc_flags <<<"$flags"
"${compiler[@]}" -std=c++20 "$source_dir/tests/package/main.cpp" -o "$work/consumer-pkg-config" \
    "${pc_flags[@]}"

# 3. The source tree as a subdirectory of the consumer's own build.
cmake -S "$source_dir/tests/package" -B "$work/subdirectory" -G Ninja \
    -DMQTTX_SOURCE_DIR="$source_dir" "${launcher[@]}"
cmake --build "$work/subdirectory"

mqttx_start_mosquitto
for consumer in "$consumer_build/consumer" "$work/consumer-pkg-config" "$work/subdirectory/consumer"; do
    echo "== $consumer"
    "$consumer" "$MQTTX_BROKER"
done
