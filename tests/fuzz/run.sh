#!/usr/bin/env bash
# tests/fuzz/run.sh - `make fuzz`: build the libFuzzer targets and run each
# for FUZZ_RUNS executions (default 10,000,000), starting from its kept corpus
# (tests/fuzz/<target>/corpus + regressions).  One JSON line per target:
# execs, exec/s, crashes (inputs saved under build/fuzz/crashes/<target>/),
# corpus size before and after.  FUZZ_UPDATE=1 replaces the kept corpus with
# the run's corpus minimized (-merge=1).  Exit 1 if any target crashed.
#
#   tests/fuzz/run.sh [target...]        (targets: record journal spill mlflow_resp ring evallog)
#   FUZZ_RUNS=N FUZZ_SECONDS=S FUZZ_UPDATE=1 tests/fuzz/run.sh ...
#   tests/fuzz/run.sh --replay [target...]   each kept input once (make test)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
replay=0
if [ "${1:-}" = --replay ]; then
	replay=1
	shift
fi
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(record journal spill mlflow_resp ring evallog)
RUNS=${FUZZ_RUNS:-10000000}
# FUZZ_SECONDS bounds each target's time as well (a shared machine); the JSON
# line then shows how many of the FUZZ_RUNS executions were done.
TIME=()
[ -n "${FUZZ_SECONDS:-}" ] && TIME=(-max_total_time="$FUZZ_SECONDS")
FB=build/fuzz
make -s --no-print-directory -j2 -f tests/fuzz/fuzz.mk all >"$FB.build.log" 2>&1 || {
	tail -n 40 "$FB.build.log"
	echo '{"error":"fuzz build failed"}'
	exit 1
}
# A smaller quarantine: the targets allocate per input and the machine is shared.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:malloc_context_size=8:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
for t in "${TARGETS[@]}"; do
	bin=$FB/$t kept=tests/fuzz/$t
	dirs=()
	for d in "$kept/corpus" "$kept/regressions"; do
		[ -d "$d" ] && dirs+=("$d")
	done
	if [ $replay = 1 ]; then
		# Every kept input once, under ASan+UBSan: regressions caught in seconds.
		if "$bin" -runs=0 "${dirs[@]}" >"$FB/replay-$t.log" 2>&1; then
			echo "PASS fuzz replay $t ($(find "${dirs[@]}" -type f | wc -l) inputs)"
		else
			grep -E "ERROR|SUMMARY|runtime error|Running:" "$FB/replay-$t.log" | tail -n 8
			echo "FAIL fuzz replay $t (log: $FB/replay-$t.log)"
			failed=1
		fi
		continue
	fi
	work=$FB/work/$t crashes=$FB/crashes/$t/
	rm -rf "$work"
	mkdir -p "$work" "$crashes"
	for d in "${dirs[@]}"; do cp "$d"/* "$work"/; done
	before=$(ls "$work" | wc -l)
	crash0=$(ls "$crashes" | wc -l)
	dict=()
	[ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
	log=$FB/fuzz-$t.log
	start=$(date +%s)
	nice -n 10 "$bin" -runs="$RUNS" "${TIME[@]}" -print_final_stats=1 -artifact_prefix="$crashes" \
		"${dict[@]}" "$work" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
	crashes_n=$(($(ls "$crashes" | wc -l) - crash0))
	after=$(ls "$work" | wc -l)
	if [ "${FUZZ_UPDATE:-0}" = 1 ] && [ $rc -eq 0 ]; then
		rm -rf "$FB/min/$t"
		mkdir -p "$FB/min/$t"
		"$bin" -merge=1 "$FB/min/$t" "$work" >"$FB/merge-$t.log" 2>&1 &&
			rm -rf "$kept/corpus" && mkdir -p "$kept/corpus" && cp "$FB/min/$t"/* "$kept/corpus/"
		after=$(ls "$kept/corpus" | wc -l)
	fi
	[ $rc -eq 0 ] || failed=1
	printf '{"target":"%s","execs":%s,"exec_per_s":%s,"seconds":%d,"crashes":%d,"exit":%d,"corpus_before":%d,"corpus_after":%d}\n' \
		"$t" "${execs:-0}" "${eps:-0}" "$secs" "$crashes_n" "$rc" "$before" "$after"
done
exit $failed
