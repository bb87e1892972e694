#!/usr/bin/env bash
# `make install PREFIX=...` gives a user what they build against: the header,
# static and shared libringflow, and a pkg-config file that links.  Builds a
# small program against the installed copy only and runs it on a private ring.
set -euo pipefail
cd "$(dirname "$0")/../.."
prefix=$(mktemp -d /tmp/rf-install.XXXXXX)
ring="/rf-install-check-$$"
trap 'rm -rf "$prefix"; rm -f "/dev/shm$ring"' EXIT
make -s --no-print-directory VARIANT=release install PREFIX="$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cat >"$prefix/use.c" <<'C'
#include <ringflow.h>
#include <stdio.h>
int main(void)
{
	rf_producer *p;
	if (rf_producer_open(&p, NULL)) {
		fprintf(stderr, "%s\n", rf_errmsg());
		return 1;
	}
	rf_rec r;
	if (rf_rec_begin(p, &r, RF_EV_LOG, 0))
		return 1;
	rf_rec_str(&r, "message", "installed");
	int rc = rf_rec_end(&r);
	rf_producer_close(p);
	return rc ? 1 : 0;
}
C
# shellcheck disable=SC2046
gcc -std=c17 -Wall -Werror "$prefix/use.c" -o "$prefix/use-shared" $(pkg-config --cflags --libs ringflow) -lmsgpackc -lz
# shellcheck disable=SC2046
gcc -std=c17 -Wall -Werror "$prefix/use.c" -o "$prefix/use-static" $(pkg-config --cflags ringflow) \
	"$prefix/lib/libringflow.a" $(pkg-config --libs-only-l --static ringflow | sed 's/-lringflow//')
RINGFLOW_RING=$ring LD_LIBRARY_PATH=$prefix/lib "$prefix/use-shared"
RINGFLOW_RING=$ring "$prefix/use-static"
out=$("$prefix/bin/ringflow-dump" --ring "$ring" --idle-ms 100 2>/dev/null)
n=$(grep -c '"message":"installed"' <<<"$out")
"$prefix/bin/ringflowd" --help | grep -q MLFLOW_TRACKING_URI
unit=$prefix/lib/systemd/user/ringflowd.service
grep -q "^ExecStart=$prefix/bin/ringflowd\$" "$unit"
echo "install: header, libringflow.so/.a, ringflow.pc, ringflowd, ringflow-dump, user unit;" \
	"2 programs built and ran ($n records)"
[ "$n" = 2 ]
