#!/usr/bin/env bash
# Install the Debian 12 packages ringflow needs to build and test.
# Idempotent and cheap: one dpkg-query for all packages; apt only runs when
# something is missing (apt-get update once, then one install).
set -euo pipefail
. "$(dirname "$0")/rf_help.sh"

PKGS=(
	build-essential gcc clang make pkg-config
	liburing-dev libcurl4-openssl-dev libmsgpack-dev libjansson-dev zlib1g-dev
	libarchive-dev # reads Inspect's .eval logs (zip with zstd members) for artifacts
	libmicrohttpd-dev # the optional Prometheus /metrics endpoint of ringflowd
	libclang-rt-14-dev # clang's ASan/UBSan/TSan runtimes (VARIANT=asan CC=clang)
	python3-dev
	procps iproute2 # ps/pgrep/ss used by the demo and sidecar tests
	spin # model checks of the ring protocol (tests/model)
	chromium # headless screenshot of the MLflow UI's trace view (tests/python/test_traces.py)
	postgresql # the load test's MLflow backend (tests/python/test_load.py starts its own cluster)
)

# python3-venv only matters if the python3 we will use cannot make venvs
# (the Debian system python splits venv out; pyenv's python has it built in).
if ! python3 -m venv --help >/dev/null 2>&1; then
	PKGS+=(python3-venv)
fi

# dpkg-query prints nothing for unknown packages (stderr dropped); only
# "ii" (desired=install, status=installed) counts as present.
installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PKGS[@]}" 2>/dev/null |
	awk '$2 == "ii" { print $1 }' || true)
missing=()
for p in "${PKGS[@]}"; do
	grep -qxF "$p" <<<"$installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} Debian packages already installed"
	exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "install-deps: ERROR: missing ${missing[*]} and not root (no sudo)" >&2
		exit 1
	fi
fi

log=$(mktemp /tmp/rf-install-deps.XXXXXX.log)
if ! { "${SUDO[@]}" apt-get update -q &&
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	tail -n 30 "$log" >&2
	echo "install-deps: ERROR: apt-get failed installing: ${missing[*]} (log: $log)" >&2
	exit 1
fi
rm -f "$log"
echo "install-deps: installed ${#missing[@]} package(s): ${missing[*]}"
