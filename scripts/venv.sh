#!/usr/bin/env bash
# Create/refresh .venv/ at the repo top from requirements.txt.
# The pip step is skipped when .venv/.stamp holds requirements.txt's sha256,
# so `make test` costs nothing here after the first run.
set -euo pipefail
. "$(dirname "$0")/rf_help.sh"
cd "$(dirname "$0")/.."

VENV=.venv
REQ=requirements.txt
STAMP="$VENV/.stamp"
LOG="$VENV/.install.log"
PY="${PYTHON:-python3}"

die() { echo "venv.sh: ERROR: $*" >&2; exit 1; }

[ -f "$REQ" ] || die "$REQ not found"
want=$(sha256sum "$REQ" | cut -d' ' -f1)

# A venv whose interpreter vanished (e.g. pyenv version removed) is useless:
# rebuild it instead of failing later inside pip.
if [ -d "$VENV" ] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
	rm -rf "$VENV"
fi

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
	echo "venv: .venv up to date ($("$VENV/bin/python" -V 2>&1))"
	exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
	"$PY" -m venv "$VENV" >/dev/null 2>&1 ||
		die "'$PY -m venv $VENV' failed (is python3-venv installed? run scripts/install-deps.sh)"
fi

start=$(date +%s)
# Remove the stamp first: an interrupted install must not look complete.
rm -f "$STAMP"
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ" >"$LOG" 2>&1; then
	tail -n 30 "$LOG" >&2
	die "pip install -r $REQ failed (full log: $LOG)"
fi
echo "$want" >"$STAMP"
echo "venv: installed $REQ into .venv in $(( $(date +%s) - start ))s ($("$VENV/bin/python" -V 2>&1))"
