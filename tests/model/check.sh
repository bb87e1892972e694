#!/usr/bin/env bash
# Model-check the ring's wakeup handshake with spin (see wakeup.pml).
# The fenced protocol must verify; without either side's fence it must fail,
# which shows the check can catch a lost wakeup.  Exit 0 pass, 1 fail, 77 skip.
set -u
command -v spin >/dev/null || { echo "spin not installed"; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
verify() { # $1 = extra spin flag; prints pan's error count
	spin -a $1 "$here/wakeup.pml" >/dev/null && gcc -O1 -w -o pan pan.c &&
	./pan -n 2>&1 | tee pan.out | sed -n 's/.*errors: \([0-9]*\).*/\1/p'
}
ok=$(verify "")
bad_p=$(verify "-DNOFENCE_P")
bad_c=$(verify "-DNOFENCE_C")
echo "wakeup model: fenced protocol $ok errors; producer fence removed $bad_p," \
     "consumer fence removed $bad_c (each must find the lost wakeup)"
[ "$ok" = 0 ] && [ "${bad_p:-0}" -gt 0 ] && [ "${bad_c:-0}" -gt 0 ]
