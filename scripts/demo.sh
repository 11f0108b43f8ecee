#!/usr/bin/env bash
# Builds River's example and runs it: a run started in process, its events printed as they
# arrive, then the same run resumed from the middle with its token.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "${RIVER_JOBS:-2}" --target hello_run
exec ./build/release/examples/hello_run "$@"
