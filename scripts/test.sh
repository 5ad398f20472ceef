#!/usr/bin/env bash
# Sets up, builds and runs every test: the normal build, the ASan+UBSan build,
# valgrind over the in-process suites, and luacheck over the shipped Lua.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== build (warnings are errors) and ctest"
BUILD_DIR=build bash scripts/build.sh
ctest --test-dir build --output-on-failure

echo "== ASan+UBSan build and ctest"
BUILD_DIR=build-asan bash scripts/build.sh -DYZ_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure

echo "== valgrind over the in-process suites"
for t in build/tests/test_*; do
  case "$t" in *test_cli) continue ;; esac # it runs the binary as a child
  YIZHAN_SHIPPED_PLUGINS="$PWD/plugins" \
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    "$t" >/dev/null
  echo "valgrind clean: $(basename "$t")"
done

echo "== luacheck"
luacheck --no-color -q plugins examples
