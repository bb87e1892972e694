#!/usr/bin/env bash
# tests/run_all.sh - the whole `make test` suite.
#
#   release (gcc)        build + every C test
#   asan    (clang)      ASan+UBSan build + every C test; also proves the code
#                        builds warning-free (-Werror) under clang as well as gcc
#   tsan    (gcc)        TSan build + the in-process concurrency tests (TSAN_TESTS)
#   checks               spin model, make install (tests/{model,install}/check*.sh)
#   python               pytest tests/python in .venv (if there are tests)
#   fuzz replay (clang)  each fuzz target's kept corpus once (tests/fuzz/)
#   python+asan          test_sidecar.py, test_bad_input.py again with ringflowd
#                        under ASan+UBSan
#
# Every step runs even after an earlier one failed, so one run reports
# everything.  The very last line is "N passed, N failed[, N skipped]" summed
# over all steps; a build failure counts as one failed test.  Exit 1 if
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
exec 2>&1 # one ordered stream: CI reads the last line

LOGS=build/logs
mkdir -p "$LOGS"
RES=$(mktemp /tmp/rf-results.XXXXXX)
trap 'rm -f "$RES"' EXIT

pass=0 fail=0 skip=0
failed_steps=()

step_fail() { # a failure that is not a test's own: counts as one failed test
	echo "FAIL $1"
	fail=$((fail + 1))
	failed_steps+=("$1")
}
# failed_steps (names only) is for the recap; counts come from $RES.

# build VARIANT CC: make all, quietly; show the tail of the log if it breaks.
build() {
	local v=$1 cc=$2 log="$LOGS/build-$1.log" stamp="build/$1/.rf-cc" want
	want="$cc: $("$cc" --version 2>/dev/null | head -n1)"
	# build/$v does not record which compiler made its objects; without this,
	# a tree built earlier with gcc would let clang's warnings go unchecked.
	if [ -d "build/$v" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
		rm -rf "build/$v"
	fi
	echo "== $v ($cc): build"
	if make -s --no-print-directory VARIANT="$v" CC="$cc" all >"$log" 2>&1; then
		echo "$want" >"$stamp"
		return 0
	fi
	tail -n 60 "$log" | sed 's/^/    /'
	step_fail "build $v ($cc) (full log: $log)"
	return 1
}

# test_c VARIANT CC [NAMES...]: make test-c; run.sh appends "pass fail skip".
test_c() {
	local v=$1 cc=$2 before after rc
	shift 2
	echo "== $v ($cc): C tests"
	before=$(wc -l <"$RES")
	RF_RESULTS="$RES" make -s --no-print-directory VARIANT="$v" CC="$cc" test-c TESTS="$*"
	rc=$?
	after=$(wc -l <"$RES")
	# make failing before run.sh wrote its line means the tests never ran.
	if [ "$after" -eq "$before" ] && [ $rc -ne 0 ]; then
		step_fail "$v C tests did not run (make test-c exit $rc)"
	elif [ $rc -ne 0 ]; then
		failed_steps+=("$v C tests")
	fi
}

# (a) release, gcc
build release gcc && test_c release gcc

# (b) ASan+UBSan, clang.  halt_on_error makes UBSan findings fail the test.
if build asan clang; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		test_c asan clang
fi

# (b2) The fuzz targets' kept inputs (tests/fuzz/<target>/{corpus,regressions}),
# each once through its libFuzzer binary (clang, ASan+UBSan): what `make fuzz`
# found stays fixed.  Seconds; the long runs are `make fuzz`, outside make test.
echo "== fuzz corpora (clang, ASan+UBSan): replay"
fz=$(ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	./tests/fuzz/run.sh --replay 2>&1)
echo "$fz"
fz_p=$(grep -c '^PASS fuzz replay' <<<"$fz") fz_f=$(grep -c '^FAIL fuzz replay' <<<"$fz")
if [ "$fz_p" -eq 0 ] && [ "$fz_f" -eq 0 ]; then
	step_fail "fuzz replay did not run"
else
	echo "$fz_p $fz_f 0" >>"$RES"
	[ "$fz_f" -eq 0 ] || failed_steps+=("fuzz replay")
fi

# (c) TSan, gcc: the concurrency tests.  ThreadSanitizer sees only its own
# process: the multi-process tests (test_ring_stress, test_ring_crash*) mark
# their mapping of the segment as shared with an unseen process, so what TSan
# checks there is everything else; test_ring_threads puts the whole protocol,
# both sides, in one process where TSan sees it all.
TSAN_TESTS=(test_ring_threads test_ring_wakeup test_ring_full test_ring_semantics test_producer test_trace
	test_ring_stress test_ring_crash test_ring_crash_consumer test_status test_err test_artq)
if build tsan gcc; then
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		test_c tsan gcc "${TSAN_TESTS[@]}"
fi

# (d) Script checks: the spin model of the ring's wakeup handshake (what no
# test run can force: no lost wakeup under x86-TSO reordering), and
# `make install` as a user builds against it; the tree's own rules (file sizes,
# nothing outside the repo) and that every benchmark figure names its script.
for m in tests/model/check*.sh tests/install/check*.sh tests/docs/check*.sh; do
	[ -x "$m" ] || continue
	echo "== check: $m"
	"$m"
	case $? in
	0) echo "PASS $m"; echo "1 0 0" >>"$RES" ;;
	77) echo "SKIP $m"; echo "0 0 1" >>"$RES" ;;
	*) echo "FAIL $m"; echo "0 1 0" >>"$RES"; failed_steps+=("$m") ;;
	esac
done

# pytest_step NAME XML ARGS...: run pytest in the venv, add its junit counts
# (errors in fixtures or collection count as failures) to the totals.
pytest_step() {
	local name=$1 xml=$2 rc counts=""
	shift 2
	echo "== python: $name"
	if [ ! -x .venv/bin/python ]; then
		step_fail "$name: .venv missing (run: make venv)"
		return
	fi
	rm -f "$xml"
	.venv/bin/python -m pytest -q "$@" --junitxml="$xml"
	rc=$?
	if [ -s "$xml" ]; then
		counts=$(.venv/bin/python - "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
t = f = s = 0
for su in suites:
    t += int(su.get("tests", 0))
    f += int(su.get("failures", 0)) + int(su.get("errors", 0))
    s += int(su.get("skipped", 0))
print(t - f - s, f, s)
PY
		)
	fi
	if [ $rc -eq 5 ]; then
		echo "   (pytest collected no tests)" # exit 5 is not a failure
	elif [ -n "$counts" ]; then
		echo "$counts" >>"$RES"
		if [ $rc -ne 0 ] && [ "$(echo "$counts" | cut -d' ' -f2)" = 0 ]; then
			step_fail "$name: pytest exited $rc" # failed, yet no failure recorded
		elif [ $rc -ne 0 ]; then
			failed_steps+=("$name")
		fi
	elif [ $rc -ne 0 ]; then
		step_fail "$name: pytest exited $rc without a report"
	fi
}

# (e) Python tests, in the pinned venv.
if compgen -G "tests/python/test_*.py" >/dev/null; then
	pytest_step "pytest tests/python" "$LOGS/pytest.xml" tests/python
fi

# (f) The sidecar's tests again, with ringflowd built under ASan+UBSan: the
# real-server paths (HTTP, retries, journal replay, artifacts) under the
# sanitizers.  A leak or undefined behaviour makes it exit non-zero.
if [ -x build/asan/bin/ringflowd ]; then
	RF_RINGFLOWD=build/asan/bin/ringflowd \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		pytest_step "sidecar, traces and ops tests with ringflowd under ASan+UBSan" \
		"$LOGS/pytest-asan.xml" tests/python/test_sidecar.py tests/python/test_traces.py \
		tests/python/test_trace_e2e.py tests/python/test_trace_compat.py tests/python/test_ops.py \
		tests/python/test_bad_input.py tests/python/test_fidelity.py tests/python/test_ring_damage.py \
		tests/python/test_trust_files.py tests/python/test_trust_artifacts.py \
		tests/python/test_trust_secrets.py tests/python/test_trace_protocol.py \
		tests/python/test_routing.py tests/python/test_trace_memory.py \
		tests/python/test_server_answers.py tests/python/test_spool.py \
		-k "not mlflow_down and not mlflow_ui"
fi

while read -r p f s; do
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done <"$RES"

if [ ${#failed_steps[@]} -gt 0 ]; then
	printf '== failed: %s\n' "${failed_steps[@]}"
fi
summary="$pass passed, $fail failed"
[ "$skip" -gt 0 ] && summary+=", $skip skipped"
echo "$summary"
[ "$fail" -eq 0 ]
