#!/usr/bin/env bash
# Every bench/RESULTS.md section names the command that printed it and its raw
# lines are committed; README's figures point at sections that exist
# (bench/check_figures.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec .venv/bin/python bench/check_figures.py
