#!/usr/bin/env bash
# Builds the `dev` preset (Debug, -Werror) and runs the whole CTest suite.
# Usage: scripts/test.sh [extra ctest arguments, e.g. -R cli -V]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake --preset dev
cmake --build --preset dev -j2
ctest --preset dev -j2 "$@"
