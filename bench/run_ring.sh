#!/usr/bin/env bash
# run_ring.sh - run the ring benchmark over every configuration, write the JSON
# lines to stdout and bench/results/ring.jsonl, and rewrite the "## Ring" section
# of bench/RESULTS.md (other sections are kept).  Invoked by `make bench-ring`,
# which builds build/release/bench/ring_bench first.
#
# Environment:
#   RING_BENCH_BIN      binary (default build/release/bench/ring_bench)
#   RING_BENCH_SECONDS  seconds per run (default 1.0)
#   RING_BENCH_REPEAT   runs per configuration and transport; the run with the
#                       median records/s is reported (default 3)
#   RING_BENCH_CONFIGS  producers:threads pairs (default "1:1 2:1 4:1 4:4")
#   RING_BENCH_BYTES    payload sizes (default "64 128 1024 4096")
#   RING_BENCH_OUT      directory of ring.jsonl (default bench/results)
#   RING_BENCH_RESULTS  markdown file to update (default bench/RESULTS.md)
#   RING_BENCH_NO_MD=1  do not touch the markdown file
#   RING_BENCH_REPORT_ONLY=1  measure nothing: rewrite the section from the
#                       committed raw lines (ring.jsonl and its meta line)
# Extra arguments are passed to every ring_bench invocation.
#
# Exit status: 0 if every run received every record intact, 1 otherwise (the
# results are still written).
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=${RING_BENCH_BIN:-build/release/bench/ring_bench}
SECONDS_PER=${RING_BENCH_SECONDS:-1.0}
REPEAT=${RING_BENCH_REPEAT:-3}
CONFIGS=${RING_BENCH_CONFIGS:-"1:1 2:1 4:1 4:4"}
SIZES=${RING_BENCH_BYTES:-"64 128 1024 4096"}
OUT_DIR=${RING_BENCH_OUT:-bench/results}
JSONL=$OUT_DIR/ring.jsonl
RESULTS=${RING_BENCH_RESULTS:-bench/RESULTS.md}

status=0
if [[ ${RING_BENCH_REPORT_ONLY:-0} != 1 ]]; then
if [[ ! -x $BIN ]]; then
	echo "run_ring.sh: $BIN not found; build it with 'make bench-ring'" >&2
	exit 1
fi
mkdir -p "$OUT_DIR"
: >"$JSONL"

started=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
stat_before=$(grep -m1 '^cpu ' /proc/stat 2>/dev/null)
wall_before=$(date +%s.%N)
for cfg in $CONFIGS; do
	for bytes in $SIZES; do
		# One invocation per configuration: a crash or hang in one of them
		# (the binary kills a hung run itself) does not lose the others.
		nice "$BIN" --config "$cfg" --bytes "$bytes" --seconds "$SECONDS_PER" \
			--repeat "$REPEAT" "$@" \
			| tee -a "$JSONL"
		rc=${PIPESTATUS[0]}
		if [[ $rc -ne 0 ]]; then
			echo "run_ring.sh: ring_bench --config $cfg --bytes $bytes exited $rc" >&2
			status=1
		fi
	done
done

# CPU time of the benchmark (this shell's children) vs the whole machine, to
# tell how much other work shared the CPUs during the run.
times_file=$(mktemp)
times >"$times_file" # not in $(...): a subshell has its own (empty) children times
export RB_OWN_TIMES=$(tail -n1 "$times_file")
rm -f "$times_file"
export RB_STAT_BEFORE=$stat_before RB_STAT_AFTER=$(grep -m1 '^cpu ' /proc/stat 2>/dev/null)
export RB_WALL=$(echo "$wall_before $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
export RB_HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

if [[ ${RING_BENCH_NO_MD:-0} == 1 ]]; then
	exit $status
fi

# ---- machine description ----
export RB_DATE=$started
export RB_NPROC=$(nproc 2>/dev/null || echo '?')
export RB_CPU=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | sed 's/^[^:]*: *//')
export RB_KERNEL=$(uname -srm)
export RB_GCC=$(gcc --version 2>/dev/null | head -n1)
export RB_SECONDS=$SECONDS_PER
export RB_LOAD="${load_before:-?} before, $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?') after"
export RB_ARGS="$*"
export RB_SRC_HASH=$(cat ringbuf/*.c ringbuf/*.h 2>/dev/null | sha256sum | cut -c1-12)
# The conditions of the run beside its raw lines (what the section's Date,
# Machine, Load and CPU-use lines print).
python3 -c 'import json, os; print(json.dumps({"bench": "ring", "meta": {k: v for k, v in os.environ.items() if k.startswith("RB_")}}))' >>"$JSONL"
fi # measuring
export RB_JSONL=$JSONL RB_RESULTS=$RESULTS

python3 - <<'PY' || status=1
import json, os, re, statistics, sys

env = dict(os.environ)
rows = []
meta = {}
with open(env["RB_JSONL"]) as f:
    for line in f:
        line = line.strip()
        if line.startswith("{"):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if "transport" in r:
                rows.append(r)
            elif "meta" in r:
                meta = r["meta"]
if env.get("RING_BENCH_REPORT_ONLY") == "1":
    env.update(meta)  # the run's own conditions, not today's

by = {}
order = []
for r in rows:
    key = (r["producers"], r["threads"], r["record_bytes"])
    if key not in by:
        by[key] = {}
        order.append(key)
    by[key][r["transport"]] = r


def rate(r):
    v = r.get("records_per_s") if r else None
    return None if v is None else float(v)


def mrate(v):
    return "n/a" if v is None else f"{v / 1e6:.2f} M/s"


def mrange(r):
    runs = [x for x in (r or {}).get("records_per_s_runs") or [] if x is not None]
    if len(runs) < 2:
        return mrate(rate(r))
    return f"{mrate(rate(r))} ({min(runs) / 1e6:.2f}-{max(runs) / 1e6:.2f})"


def ns(v):
    return "n/a" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}")


def lat(r):
    if not r:
        return "n/a"
    return f"{ns(r.get('p50_ns'))} / {ns(r.get('p99_ns'))} / {ns(r.get('p999_ns'))}"


def lost(r):
    if not r:
        return "missing"
    s = str(r.get("lost", "?"))
    bad = (r.get("corrupt") or 0) + (r.get("out_of_order") or 0)
    if bad:
        s += f" ({bad} bad)"
    if not r.get("ok", False):
        s += " FAILED"
    return s


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


lines = []
lines.append("## Ring")
lines.append("")
lines.append("Written by `bench/run_ring.sh`; do not edit by hand.  Raw JSON lines: "
             "`bench/results/ring.jsonl` (committed; the section again from them alone: "
             "`RING_BENCH_REPORT_ONLY=1 ./bench/run_ring.sh`).")
lines.append("")
lines.append("- Command: `make bench-ring` (under nice)" +
             (f" (extra ring_bench arguments: `{env['RB_ARGS']}`)" if env.get("RB_ARGS") else ""))
lines.append(f"- Date: {env['RB_DATE']}")
lines.append(f"- Machine: {env['RB_NPROC']} CPUs (nproc), {env['RB_CPU'] or 'unknown CPU'}, "
             f"kernel {env['RB_KERNEL']}, {env['RB_GCC'] or 'gcc: not found'}")
lines.append(f"- Load average (1/5/15 min): {env['RB_LOAD']} (the benchmark itself "
             "adds up to P x T + 1 busy threads)")


def cpu_busy(line):
    f = [int(x) for x in line.split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return sum(f[i] for i in (0, 1, 2, 5, 6) if i < len(f)), (f[7] if len(f) > 7 else 0)


def secs(t):
    m = re.fullmatch(r"(\d+)m([\d.]+)s", t)
    return int(m.group(1)) * 60 + float(m.group(2)) if m else 0.0


try:
    hz = float(env.get("RB_HZ") or 100)
    b0, st0 = cpu_busy(env["RB_STAT_BEFORE"])
    b1, st1 = cpu_busy(env["RB_STAT_AFTER"])
    total = (b1 - b0) / hz
    own = sum(secs(t) for t in env.get("RB_OWN_TIMES", "").split())
    wall = float(env.get("RB_WALL") or 0)
    ncpu = int(env.get("RB_NPROC") or 1)
    other = max(0.0, total - own)
    lines.append(f"- CPU use during the {wall:.0f} s run: benchmark {own:.1f} CPU-s, everything "
                 f"else {other:.1f} CPU-s ({100 * other / (wall * ncpu) if wall else 0:.0f}% "
                 f"of the machine), steal {(st1 - st0) / hz:.1f} CPU-s")
except (KeyError, ValueError, IndexError):
    pass
lines.append(f"- Ring sources (ringbuf/*.c, *.h) sha256 prefix: `{env['RB_SRC_HASH']}`")
timer = rows[0].get("timer", "?") if rows else "?"
every = rows[0].get("sample_every", "?") if rows else "?"
tov = rows[0].get("timer_overhead_ns") if rows else None
ring_rows = [r for r in rows if r["transport"] == "ring"]
dg_rows = [r for r in rows if r["transport"] == "unix_dgram"]
cap = ring_rows[0].get("capacity") if ring_rows else None
fw = ring_rows[0].get("full_wait_ns") if ring_rows else None
sndbuf = dg_rows[0].get("sndbuf") if dg_rows else None
mode = rows[0].get("mode") if rows else None
rpt = rows[0].get("repeat", 1) if rows else 1
tres = rows[0].get("timer_resolution_ns") if rows else None
dur = (f"for {rows[0].get('seconds')} s" if mode == "duration" else
       f"{rows[0].get('records_per_thread')} records per thread" if rows else "?")


def mib(v):
    return "?" if v is None else (f"{v / 1048576:g} MiB" if v >= 1048576 else f"{v} B")


lines.append(
    f"- Method: per configuration, P producer processes (fork) x T threads each write "
    f"records {dur}, one consumer process drains and checks every "
    "record (count, per-thread sequence, length, fill byte).  Ring: "
    "`rf_ring_claim` -> 16-byte header + memset of the rest of the payload in place -> "
    f"`rf_ring_commit`, RF_RING_FULL_WAIT with a {ns(fw / 1e9 if fw else None)} s bound, "
    f"{mib(cap)} ring, consumer `rf_ring_consume`/`rf_ring_wait`.  unix_dgram: the same "
    "fill into a private buffer -> blocking `send()` on one shared "
    "`socketpair(AF_UNIX, SOCK_DGRAM)` (effective SO_SNDBUF "
    f"{mib(sndbuf)}), consumer `recvmmsg` (64 per call) + `poll`.  records/s = records "
    "received / (start barrier -> consumer has every record).  Producer cost = one "
    f"record in {every} timed with {timer} (lfence-serialised, calibrated against "
    f"CLOCK_MONOTONIC) into a log-linear histogram; one timer read costs {ns(tov)} ns "
    f"and is included, not subtracted; the timer advances in steps of {ns(tres)} ns "
    "here, so latencies are quantised to that.  "
    f"Each configuration runs {rpt} times per transport; the table shows the run "
    "with the median records/s (min-max of the runs in parentheses, M/s); `lost` "
    "is summed over all runs.  No CPU pinning.")
lines.append("")
lines.append("| P x T | bytes | ring rec/s | unix_dgram rec/s | ring / dgram | "
             "ring p50 / p99 / p999 ns | dgram p50 / p99 / p999 ns | lost ring / dgram |")
lines.append("|---|---:|---:|---:|---:|---:|---:|---|")
ratios = []
for key in order:
    p, t, b = key
    ring, dg = by[key].get("ring"), by[key].get("unix_dgram")
    q = ratio(rate(ring), rate(dg))
    if q is not None:
        ratios.append((q, key))
    lines.append(f"| {p} x {t} | {b} | {mrange(ring)} | {mrange(dg)} | "
                 f"{'n/a' if q is None else f'{q:.1f}x'} | {lat(ring)} | {lat(dg)} | "
                 f"{lost(ring)} / {lost(dg)} |")
lines.append("")


def verdict(ok):
    return "n/a (no data)" if ok is None else ("**met**" if ok else "**not met**")


def get(p, t, b, tr="ring"):
    return by.get((p, t, b), {}).get(tr)


lines.append("Goals:")
lines.append("")
# 1. 128 B claim+write+commit median <= 100 ns
r = get(1, 1, 128)
v = r.get("p50_ns") if r else None
others = [f"{p}x{t}: {ns(get(p, t, 128).get('p50_ns'))} ns" for (p, t, b) in order
          if b == 128 and (p, t) != (1, 1) and get(p, t, 128)]
lines.append(f"- 128 B claim+write+commit median <= 100 ns: "
             f"{verdict(None if v is None else v <= 100)} — {ns(v)} ns at 1 producer x 1 thread"
             + (f" (other 128 B configurations: {', '.join(others)})" if others else "") + ".")
# 2. >= 20 M records/s with one producer
v = rate(get(1, 1, 128))
sizes = [f"{b} B: {mrate(rate(get(1, 1, b)))}" for (p, t, b) in order
         if (p, t) == (1, 1) and b != 128 and get(1, 1, b)]
lines.append(f"- >= 20 M records/s with one producer: "
             f"{verdict(None if v is None else v >= 20e6)} — {mrate(v)} at 1 x 1, 128 B"
             + (f" ({', '.join(sizes)})" if sizes else "") + ".")
# 3. >= 8 M records/s with 4 producer processes
v = rate(get(4, 1, 128))
more = [f"{p}x{t} {b} B: {mrate(rate(get(p, t, b)))}" for (p, t, b) in order
        if p == 4 and (t, b) != (1, 128) and b <= 128 and get(p, t, b)]
lines.append(f"- >= 8 M records/s with 4 producer processes: "
             f"{verdict(None if v is None else v >= 8e6)} — {mrate(v)} at 4 x 1, 128 B"
             + (f" ({', '.join(more)})" if more else "") + ".")
# 4. >= 20x the socket baseline
if ratios:
    lo = min(ratios)
    hi = max(ratios)
    med = statistics.median(q for q, _ in ratios)
    n_ok = sum(1 for q, _ in ratios if q >= 20)
    lines.append(
        f"- >= 20x the unix_dgram baseline: {verdict(n_ok == len(ratios))} — "
        f"{n_ok} of {len(ratios)} configurations reach 20x; ratio min {lo[0]:.1f}x "
        f"({lo[1][0]}x{lo[1][1]}, {lo[1][2]} B), median {med:.1f}x, max {hi[0]:.1f}x "
        f"({hi[1][0]}x{hi[1][1]}, {hi[1][2]} B).")
else:
    lines.append("- >= 20x the unix_dgram baseline: n/a (no data).")
failed = [k for k in order for tr, r in by[k].items() if not r.get("ok", False)]
missing = [k for k in order if len(by[k]) < 2]
if failed or missing or not rows:
    lines.append("")
    lines.append(f"**Incomplete run**: {len(failed)} run(s) failed verification, "
                 f"{len(missing)} configuration(s) missing a transport"
                 + ("" if rows else "; no results at all") + ".  See the JSON lines.")
lines.append("")
section = "\n".join(lines)

# One section-replacement for every benchmark: bench/results_section.py.
import subprocess
path = env["RB_RESULTS"]
subprocess.run([sys.executable, "bench/results_section.py", path, "Ring"], input=section,
               text=True, check=True)
print(f"run_ring.sh: wrote the Ring section of {path}", file=sys.stderr)
PY

exit $status
