#!/usr/bin/env bash
# Runs every River test on a fresh Debian 12 machine:
#   1. g++, warnings as errors, optimised: build everything and run all tests (the browser test
#      drives the chat demo in Debian's headless Chromium, with playwright-core from npm; the docs
#      tests compile every C++ block of README.md and docs/*.md);
#   2. g++ with AddressSanitizer and UndefinedBehaviorSanitizer: build and run all tests again;
#   3. g++ with ThreadSanitizer: the server on four I/O threads under concurrent load;
#   4. clang++ with libFuzzer: every fuzz target, fuzzed briefly from its seed corpus;
#   5. clang++, warnings as errors: build everything (the library must build with both compilers).
# Build trees live under build/ (build/release, build/sanitize, build/tsan, build/fuzz, build/clang).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

jobs=${RIVER_JOBS:-2}
export CTEST_OUTPUT_ON_FAILURE=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

step() { printf '\n== river: %s ==\n' "$*"; }

# Line tables only (-g1): enough for sanitizer reports and profiles; full debug info costs a
# quarter of the build time.
configure() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DRIVER_WARNINGS_AS_ERRORS=ON \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DCMAKE_CXX_FLAGS_DEBUG=-g1 "$@" >/dev/null
}

step "release build (g++)"
configure build/release -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build/release -j "$jobs"
step "browser test dependencies (npm ci)"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
step "tests (release)"
ctest --test-dir build/release -j "$jobs" --timeout 600

step "sanitizer build (g++, AddressSanitizer + UndefinedBehaviorSanitizer)"
configure build/sanitize -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug -DRIVER_SANITIZE=ON
# Only what the tests run: the other examples and the benchmarks are built by the other two.
cmake --build build/sanitize -j "$jobs" --target river_tests
step "tests (sanitizers)"
# The docs' snippets are compiled once, in the release step.
ctest --test-dir build/sanitize -j "$jobs" --timeout 900 --label-exclude 'package|docs'

step "thread sanitizer build (g++, ThreadSanitizer)"
configure build/tsan -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug -DRIVER_SANITIZE_THREAD=ON
# The server on four I/O threads under concurrent start, resume, cancel and shutdown.
cmake --build build/tsan -j "$jobs" --target tests-threads
step "tests (thread sanitizer)"
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
  ctest --test-dir build/tsan -j 1 --timeout 600 --label-regex threads

step "fuzz targets (clang++, libFuzzer with AddressSanitizer + UndefinedBehaviorSanitizer)"
configure build/fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRIVER_BUILD_FUZZERS=ON \
  -DRIVER_BUILD_TESTS=OFF -DRIVER_BUILD_EXAMPLES=OFF -DRIVER_BUILD_BENCHMARKS=OFF -Driver_fuzz_seconds=15
cmake --build build/fuzz -j "$jobs"
step "fuzzing (15 s per target; scripts/fuzz.sh runs them longer)"
ctest --test-dir build/fuzz -j "$jobs" --label-regex fuzz

step "clang++ build"
configure build/clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DRIVER_BUILD_TESTS=OFF
cmake --build build/clang -j "$jobs"

step "all tests passed"
