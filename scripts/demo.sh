#!/usr/bin/env bash
# make demo: the main job end to end, as far as the pipeline reaches today:
#   1. the ring alone: producer processes -> shared memory -> consumer;
#   2. a real Inspect AI eval whose ringflow hook writes every run, task,
#      sample, model call, tool call and score into the ring, read back and
#      decoded with msgpack-c by ringflow-dump (the sidecar's decoder).
# The sidecar that uploads these records to MLflow is the next piece.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/ringflow-demo.XXXXXX)
ring="/ringflow-demo-$$"
cleanup() { rm -f "/dev/shm$ring"; rm -rf "$work"; }
trap cleanup EXIT

echo "== 1. the ring: 4 processes x 2 threads -> one consumer"
./build/release/examples/ring_demo

echo
echo "== 2. an Inspect eval (mockllm, tool calls, two scorers) with the ringflow hook"
RINGFLOW_RING=$ring RINGFLOW_AUTOSTART=0 RINGFLOW_SPOOL_DIR="$work/spool" \
MLFLOW_TRACKING_URI=${MLFLOW_TRACKING_URI:-http://127.0.0.1:5000} INSPECT_LOG_LEVEL=warning \
	.venv/bin/python examples/demo_eval.py 20 "$work/logs"
echo
echo "== records in the ring, decoded (ringflow-dump):"
./build/release/bin/ringflow-dump --ring "$ring" --idle-ms 200 >"$work/records.jsonl"
.venv/bin/python - "$work/records.jsonl" <<'PY'
import collections, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
counts = collections.Counter(r["type"] for r in recs)
print("  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
calls = [r["data"] for r in recs if r["type"] == "model_call"]
tok = sum(c["input_tokens"] + c["output_tokens"] for c in calls)
span = [c["completed"] - c["timestamp"] for c in calls]
print(f"  {len(calls)} model calls, {tok} tokens; event times from Inspect itself "
      f"(model call durations {min(span)*1e3:.2f}-{max(span)*1e3:.2f} ms)")
end = next(r["data"] for r in recs if r["type"] == "sample_end")
print("  one sample_end: " + json.dumps({k: end[k] for k in ("sample_id", "epoch", "status", "scores", "total_time")})[:300])
PY
