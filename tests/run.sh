#!/usr/bin/env bash
# tests/run.sh DIR [NAMES...] - run the C test programs in DIR.
#
# Each test is its own program: exit 0 = pass, 1 (or anything else) = fail,
# 77 = skip.  Tests run one at a time (they exercise concurrency and the
# machine has 2 cores), each under a timeout (RF_TEST_TIMEOUT, default 300 s).
# Output of each test goes to build/logs/<tag>/<name>.log; a failing test's
# last 40 lines are printed.  If RF_RESULTS is set, one line "pass fail skip"
# is appended to it (tests/run_all.sh sums those).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TIMEOUT=${RF_TEST_TIMEOUT:-300}

if [ $# -lt 1 ]; then
	echo "usage: $0 DIR [NAMES...]" >&2
	exit 2
fi
DIR=${1%/}
shift
if [ ! -d "$DIR" ]; then
	echo "run.sh: ERROR: test directory '$DIR' does not exist" >&2
	exit 2
fi

# Per-variant log dir: build/release/tests -> build/logs/release, so the
# release/asan/tsan runs of the same test don't overwrite each other.
tag=$(cd "$DIR" && pwd)
tag=${tag#"$REPO"/}
tag=${tag#build/}
tag=${tag%/tests}
tag=${tag#/}
tag=${tag//\//_}
LOGDIR="$REPO/build/logs/${tag:-tests}"
mkdir -p "$LOGDIR"

tests=()
if [ $# -gt 0 ]; then
	tests=("$@")
else
	for f in "$DIR"/*; do
		[ -f "$f" ] && [ -x "$f" ] && tests+=("$(basename "$f")")
	done
fi

pass=0 fail=0 skip=0
for name in "${tests[@]}"; do
	name=$(basename "$name")
	prog="$DIR/$name"
	log="$LOGDIR/$name.log"
	if [ ! -x "$prog" ]; then
		# A named test that is not there was probably not built: that's a failure.
		echo "FAIL $name (not found or not executable: $prog)"
		fail=$((fail + 1))
		continue
	fi
	start=$(date +%s%N)
	# timeout puts the test in its own process group and kills all of it,
	# so a hung multi-process test cannot outlive its budget.
	# The outer subshell only exists to swallow bash's own "Segmentation
	# fault" job notice; the signal is reported in the FAIL line instead.
	(
		timeout --kill-after=10 "$TIMEOUT" "$prog" </dev/null >"$log" 2>&1
		exit $?
	) 2>/dev/null
	rc=$?
	end=$(date +%s%N)
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	timed_out=$(awk -v a="$start" -v b="$end" -v t="$TIMEOUT" 'BEGIN { print ((b - a) / 1e9 >= t) ? 1 : 0 }')
	case $rc in
	0)
		echo "PASS $name (${secs}s)"
		pass=$((pass + 1))
		;;
	77)
		why=$(grep -m1 -i 'skip' "$log" 2>/dev/null | cut -c1-120)
		echo "SKIP $name${why:+ ($why)}"
		skip=$((skip + 1))
		;;
	*)
		# 124 = timeout's TERM; 137 = its KILL 10 s later (or an OOM kill,
		# hence the elapsed-time check).
		if [ "$timed_out" = 1 ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
			what="exit $rc: timed out after ${TIMEOUT}s"
		elif [ $rc -gt 128 ]; then
			what="exit $rc: killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
		else
			what="exit $rc"
		fi
		echo "FAIL $name ($what)"
		echo "---- last 40 lines of $log ----"
		if [ -s "$log" ]; then
			tail -n 40 "$log" | sed 's/^/    /'
		else
			echo "    (no output)"
		fi
		echo "----"
		fail=$((fail + 1))
		;;
	esac
done

# Worded pass/fail/skip (not "passed, failed") on purpose: the one closing
# "N passed, N failed" line belongs to tests/run_all.sh.
echo "run.sh: $DIR: $pass pass, $fail fail, $skip skip"
if [ -n "${RF_RESULTS:-}" ]; then
	echo "$pass $fail $skip" >>"$RF_RESULTS"
fi
[ "$fail" -eq 0 ]
