#!/usr/bin/env bash
# Runs the built examples against a throwaway mosquitto; fails if any example fails.
#   tests/run_examples.sh <build_dir> <source_dir>
set -euo pipefail
build_dir=$1
source_dir=$2
# shellcheck source=scripts/lib/mosquitto.sh
source "$source_dir/scripts/lib/mosquitto.sh"
trap mqttx_stop_mosquitto EXIT
mqttx_start_mosquitto
"$build_dir/examples/quickstart/mqttx-quickstart" "$MQTTX_BROKER"
"$build_dir/examples/fleet/mqttx-fleet" "$MQTTX_BROKER" 20
"$build_dir/examples/bridge/mqttx-bridge-example" "$MQTTX_BROKER"
if [[ -x "$build_dir/examples/metrics/mqttx-metrics" ]]; then
    "$build_dir/examples/metrics/mqttx-metrics" "$MQTTX_BROKER" 0 0
fi
