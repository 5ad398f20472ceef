#!/usr/bin/env bash
# Configures and builds yizhan into build/ (or $BUILD_DIR), warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DYZ_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
