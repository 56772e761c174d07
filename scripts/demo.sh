#!/usr/bin/env bash
# Builds the quickstart example and runs it against a broker, then runs mqttx-bridge
# between two throwaway local brokers: messages cross, /metrics answers, SIGTERM stops it.
#   scripts/demo.sh                      # starts a throwaway local mosquitto
#   scripts/demo.sh tcp://host:1883      # runs the quickstart against that broker
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh
cmake --preset release
cmake --build --preset release --target mqttx-quickstart mqttx-bridge

# shellcheck source=scripts/lib/mosquitto.sh
source scripts/lib/mosquitto.sh
brokers=()  # "pid dir" of each broker started here
bridge_pid=
state=
cleanup() {
    if [[ -n $bridge_pid ]]; then kill -KILL "$bridge_pid" 2>/dev/null || true; fi
    for entry in "${brokers[@]}"; do
        read -r MQTTX_MOSQUITTO_PID MQTTX_MOSQUITTO_DIR <<<"$entry"
        mqttx_stop_mosquitto
    done
    if [[ -n $state ]]; then rm -rf "$state"; fi
}
trap cleanup EXIT
start_broker() {
    mqttx_start_mosquitto
    brokers+=("$MQTTX_MOSQUITTO_PID $MQTTX_MOSQUITTO_DIR")
}
port_of() { echo "${1##*:}"; }
# GET over bash's /dev/tcp (no curl needed): prints the body.
http_get() {
    local response
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    response=$(cat <&3)
    exec 3<&-
    printf '%s\n' "${response#*$'\r\n\r\n'}"
}

echo "== quickstart"
if (($# > 0)); then
    broker=$1
else
    start_broker
    broker=$MQTTX_BROKER
fi
build/release/examples/quickstart/mqttx-quickstart "$broker"

echo
echo "== mqttx-bridge between two local brokers (apps/mqttx-bridge/bridge.toml)"
start_broker
site=$MQTTX_BROKER
start_broker
cloud=$MQTTX_BROKER
state=$(mktemp -d /tmp/mqttx-demo-bridge-XXXXXX)
SITE_BROKER=$site CLOUD_BROKER=$cloud STATE_DIRECTORY=$state \
    build/release/apps/mqttx-bridge/mqttx-bridge --config apps/mqttx-bridge/bridge.toml \
    --listen 127.0.0.1:0 2>"$state/bridge.log" &
bridge_pid=$!
http_port=
for ((i = 0; i < 200; i++)); do
    http_port=$(sed -n 's/.*http: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$state/bridge.log")
    [[ -n $http_port ]] && [[ $(http_get "$http_port" /readyz 2>/dev/null) == ready ]] && break
    sleep 0.1
done
[[ $(http_get "$http_port" /readyz) == ready ]] || { cat "$state/bridge.log"; exit 1; }
echo "bridge ready; /metrics, /healthz and /readyz on 127.0.0.1:$http_port"

# A persistent subscriber on the cloud broker, so nothing is missed before it listens.
sub=(mosquitto_sub -h 127.0.0.1 -p "$(port_of "$cloud")" -i mqttx-demo-sub -c -q 1 -t 'storage/#')
"${sub[@]}" -E
for room in kitchen hall attic; do
    mosquitto_pub -h 127.0.0.1 -p "$(port_of "$site")" -q 1 -t "sensors/$room/temperature" -m "21.$RANDOM"
    echo "site  <- sensors/$room/temperature"
done
"${sub[@]}" -v -C 3 -W 20 | sed 's/^/cloud -> /'

echo "/metrics (excerpt):"
http_get "$http_port" /metrics | grep -E '^mqtt_forwarder_(forwarded|acknowledged)_total|^mqttx_bridge_' | sed 's/^/  /'

kill -TERM "$bridge_pid"
status=0
wait "$bridge_pid" || status=$?
bridge_pid=
tail -n 3 "$state/bridge.log"
echo "mqttx-bridge exited with status $status"
exit "$status"
