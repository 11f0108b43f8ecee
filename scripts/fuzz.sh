#!/usr/bin/env bash
# Fuzzes River's parsers and decoders with libFuzzer (clang, with AddressSanitizer and
# UndefinedBehaviorSanitizer): builds the targets of tests/fuzz in build/fuzz, then runs each for
# SECONDS (default 600) from its seed corpus, two at a time (RIVER_JOBS), and prints per target
# the executions and the crashes.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     TARGET: a directory name under tests/fuzz/corpus
#
# What the fuzzer finds goes to a scratch corpus, RIVER_FUZZ_CORPUS (default
# build/fuzz/tests/fuzz/corpus, which the CTest tests use too), never to the seeds in git; a run
# starts from both, so later runs go on where earlier ones stopped. A crash is kept in
# build/fuzz/tests/fuzz/artifacts/TARGET/ and the target starts again for the time left (at most
# 20 crashes per target). Logs: build/fuzz/logs/. Exits 1 when anything crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
parallel=${RIVER_JOBS:-2}
build=build/fuzz
scratch=${RIVER_FUZZ_CORPUS:-$build/tests/fuzz/corpus}
max_crashes=20

targets=("$@")
if ((${#targets[@]} == 0)); then
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
fi

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRIVER_WARNINGS_AS_ERRORS=ON -DRIVER_BUILD_FUZZERS=ON -DRIVER_BUILD_TESTS=OFF \
  -DRIVER_BUILD_EXAMPLES=OFF -DRIVER_BUILD_BENCHMARKS=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$parallel" --target "${targets[@]/#/fuzz_}"

mkdir -p "$build/logs"
touch "$build/logs/.started"
# UBSan's reports abort, so that libFuzzer keeps the input; leaks are crashes too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Fuzzes one target for $seconds, starting again after each crash; writes "EXECUTIONS CRASHES".
fuzz_one() {
  local name=$1 summary=$2
  local corpus=$scratch/$name artifacts=$build/tests/fuzz/artifacts/$name/ log=$build/logs/$name.log
  local args=(-timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts")
  if [[ -f tests/fuzz/dict/$name.dict ]]; then args+=(-dict="tests/fuzz/dict/$name.dict"); fi
  mkdir -p "$corpus" "$artifacts"
  : >"$log"
  local executions=0 crashes=0 left=$seconds
  while ((left > 0)); do
    local started=$SECONDS status=0
    "$build/tests/fuzz/fuzz_$name" -max_total_time="$left" "${args[@]}" "$corpus" "tests/fuzz/corpus/$name" \
      >"$log.part" 2>&1 || status=$?
    cat "$log.part" >>"$log"
    # The final statistics, or the last status line when a crash cut them short.
    local n
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log.part" | tail -n 1)
    [[ -n $n ]] || n=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log.part" | tail -n 1)
    executions=$((executions + ${n:-0}))
    rm -f "$log.part"
    ((status == 0)) && break
    crashes=$((crashes + 1))
    ((crashes >= max_crashes)) && break
    left=$((left - (SECONDS - started)))
  done
  echo "$executions $crashes" >"$summary"
}

pids=()
for name in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  fuzz_one "$name" "$build/logs/$name.summary" &
  pids+=($!)
done
wait "${pids[@]}" || true

failed=0
printf '%-20s %14s %8s\n' target executions crashes
for name in "${targets[@]}"; do
  read -r executions crashes <"$build/logs/$name.summary"
  printf '%-20s %14s %8s\n' "$name" "$executions" "$crashes"
  if ((crashes > 0)); then
    failed=1
    find "$build/tests/fuzz/artifacts/$name" -type f -newer "$build/logs/.started" | sed 's/^/  /'
  fi
done
exit "$failed"
