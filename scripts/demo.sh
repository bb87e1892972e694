#!/usr/bin/env bash
# make demo: the main job end to end, as far as the pipeline reaches today.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ringflow demo: producers -> shared-memory ring -> consumer"
./build/release/examples/ring_demo
