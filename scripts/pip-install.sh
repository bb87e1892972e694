#!/usr/bin/env bash
# Install the ringflow Python package (hook + CPython extension + the
# ringflowd and ringflow-dump it builds) into .venv, rebuilding only when its
# sources changed.  What a user does is just
# `pip install ./producer/python`; the stamp keeps `make test` fast.
set -euo pipefail
. "$(dirname "$0")/rf_help.sh"
cd "$(dirname "$0")/.."
stamp=.venv/.ringflow-stamp
sum=$(cat producer/python/pyproject.toml producer/python/setup.py producer/python/MANIFEST.in \
	producer/python/ringflow/*.py producer/python/ringflow/*.c LICENSE VERSION \
	ringbuf/*.c ringbuf/*.h producer/*.c producer/*.h sidecar/*/*.c sidecar/*/*.h \
	2>/dev/null | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && .venv/bin/python -c 'import ringflow._ringflow, ringflow._cli as c; assert c.program("ringflowd")' 2>/dev/null; then
	echo "pip-install: ringflow package up to date"
	exit 0
fi
log=build/logs/pip-install.log
mkdir -p build/logs
rm -rf producer/python/build producer/python/*.egg-info producer/python/csrc producer/python/LICENSE
if ! .venv/bin/python -m pip install --no-build-isolation --no-deps ./producer/python >"$log" 2>&1; then
	tail -n 40 "$log"
	echo "pip-install: building the ringflow package failed (log: $log)" >&2
	exit 1
fi
rm -rf producer/python/build producer/python/*.egg-info producer/python/csrc producer/python/LICENSE
echo "$sum" >"$stamp"
echo "pip-install: ringflow package installed into .venv"
