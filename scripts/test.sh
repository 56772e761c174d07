#!/usr/bin/env bash
# Installs what is missing, configures, builds and runs the tests of one preset.
#   scripts/test.sh [PRESET] [CTEST ARGS...]     PRESET: dev (default), release, asan, tsan
#   scripts/test.sh dev -L unit
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

preset=${1:-dev}
shift $(($# > 0 ? 1 : 0))
SECONDS=0
trap 'echo "test.sh: preset $preset, exit code $?, took $SECONDS s"' EXIT

./scripts/setup.sh
cmake --preset "$preset"
cmake --build --preset "$preset"
ctest --preset "$preset" --output-on-failure "$@"
