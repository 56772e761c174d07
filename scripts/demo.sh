#!/usr/bin/env bash
# Builds the quickstart example and runs it against a broker.
#   scripts/demo.sh                      # starts a throwaway local mosquitto
#   scripts/demo.sh tcp://host:1883      # uses that broker
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh
cmake --preset release
cmake --build --preset release --target mqttx-quickstart

if (($# > 0)); then
    broker=$1
else
    # shellcheck source=scripts/lib/mosquitto.sh
    source scripts/lib/mosquitto.sh
    mqttx_start_mosquitto
    trap mqttx_stop_mosquitto EXIT
    broker=$MQTTX_BROKER
fi

build/release/examples/quickstart/mqttx-quickstart "$broker"
