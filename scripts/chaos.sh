#!/usr/bin/env bash
# The chaos soak for longer: two chat_server instances on one private Redis (AOF), clients that
# start, resume, cut and cancel runs, and instance SIGKILLs, Redis pauses and Redis SIGKILLs, for
# SECONDS (default 600). Prints the counts; fails if any reader's events differ from what Redis
# holds or any run did not end clearly. CI runs the same test for 20 s.
#
#   scripts/chaos.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
cmake --build build/release --target tests-chaos
RIVER_CHAOS_SECONDS=$seconds build/release/tests/tests-chaos --durations yes
