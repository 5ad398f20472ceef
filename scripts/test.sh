#!/usr/bin/env bash
# Sets up, builds and runs every test: the normal build, the ASan+UBSan build,
# valgrind over the in-process suites, and luacheck over the shipped Lua.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

suites=0
# Runs ctest in a build directory and counts its suites (all must pass).
run_ctest() {
  local dir=$1 log
  log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure | tee "$log"
  suites=$((suites + $(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$log")))
  rm -f "$log"
}

echo "== build (warnings are errors) and ctest"
BUILD_DIR=build bash scripts/build.sh
run_ctest build

echo "== ASan+UBSan build and ctest"
BUILD_DIR=build-asan bash scripts/build.sh -DYZ_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
run_ctest build-asan
unset ASAN_OPTIONS UBSAN_OPTIONS

echo "== valgrind over the in-process suites"
for t in build/tests/test_*; do
  case "$t" in *test_cli | *test_gateway | *test_crash | *test_providers | *test_registry | *test_report) continue ;; esac # they drive the binary
  YIZHAN_SHIPPED_PLUGINS="$PWD/plugins" \
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    "$t" >/dev/null
  echo "valgrind clean: $(basename "$t")"
  suites=$((suites + 1))
done

echo "== luacheck"
luacheck --no-color -q plugins examples
suites=$((suites + 1))

echo "test suites: $suites passed, 0 failed"
