#!/usr/bin/env bash
# Compares two builds of mqttx-bench (before and after a change) on this machine. It runs
# them alternately, each against raw Paho C++ in the same run, and prints every case's
# mqttx / Paho C++ throughput and CPU ratios per run and their mean per build. On a
# noisy (virtual) machine one run proves nothing: raw Paho's own figures move by a
# fifth between runs. The ratio to raw Paho in the same run, averaged over repeats, is
# what shows a change.
#   bench/ab_compare.sh OLD NEW [REPEATS] [mqttx-bench options...]
#   bench/ab_compare.sh /tmp/before/mqttx-bench build/release/bench/mqttx-bench 2 \
#       --only S2,S3,S5 --rounds 3
# Needs jq (apt-get install jq). Default options: --messages 20000 --rounds 3.
set -euo pipefail

if (($# < 2)); then
    echo "usage: $0 OLD NEW [REPEATS] [mqttx-bench options...]" >&2
    exit 2
fi
old=$1
new=$2
repeats=${3:-2}
shift $(($# >= 3 ? 3 : 2))
options=("$@")
((${#options[@]})) || options=(--messages 20000 --rounds 3)
if ! command -v jq >/dev/null; then
    echo "$0 needs jq: apt-get install jq" >&2
    exit 1
fi

runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
for ((i = 1; i <= repeats; i++)); do
    for side in old new; do
        binary=$old
        [[ $side == new ]] && binary=$new
        echo "run $i of $repeats: $side" >&2
        "$binary" --libraries mqttx,paho "${options[@]}" --json "$runs/$side-$i.json" >/dev/null 2>&1
        jq -r --arg side "$side" \
            '.cases[] | select(.ratio_mqttx_paho != null)
             | [$side, "\(.scenario) \(.label)", .ratio_mqttx_paho,
                (.results.mqttx.cpu_s_per_million / .results.paho.cpu_s_per_million),
                .metric] | @tsv' \
            "$runs/$side-$i.json" >>"$runs/all.tsv"
    done
done

# One line per case: each build's runs, then its mean (mqttx / Paho C++ for the case's
# metric, then for CPU). The last line averages the throughput cases (S1 is latency,
# where lower is better, and S6 connect time).
sort -t$'\t' -k2,2 -s "$runs/all.tsv" | awk -F'\t' '
    { key = $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
      runs[key, $1] = runs[key, $1] sprintf(" %.2f/%.2f", $3, $4)
      sum[key, $1] += $3; cpu[key, $1] += $4; count[key, $1]++
      if ($5 ~ /\/s$/) rate[key] = 1 }
    END {
      printf "%-32s %s\n", "case (metric/CPU vs Paho C++)", "old runs | mean  ->  new runs | mean"
      for (i = 1; i <= n; i++) {
        k = order[i]
        printf "%-32s%s | %.2f/%.2f  -> %s | %.2f/%.2f\n", k,
               runs[k, "old"], sum[k, "old"] / count[k, "old"], cpu[k, "old"] / count[k, "old"],
               runs[k, "new"], sum[k, "new"] / count[k, "new"], cpu[k, "new"] / count[k, "new"]
        if (k in rate) {
          all_old += sum[k, "old"] / count[k, "old"]; all_new += sum[k, "new"] / count[k, "new"]
          rates++
        }
      }
      if (rates) printf "%-32s %.3f  ->  %.3f\n", "mean throughput ratio", all_old / rates,
                        all_new / rates
    }'
