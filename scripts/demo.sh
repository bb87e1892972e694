#!/usr/bin/env bash
# make demo: the main job end to end.
#   1. the ring alone: producer processes -> shared memory -> one consumer;
#   2. an Inspect AI eval (examples/demo_eval.py: mockllm, tool calls, two
#      scorers) with the ringflow hook -> ring -> ringflowd -> MLflow;
#      `ringflowd flush` waits for the upload, `ringflowd status` shows the
#      sidecar's counters, then a summary of what MLflow holds (runs, metrics,
#      traces, artifacts) and the URL of the parent run.
# Environment: RINGFLOW_DEMO_DIR (state, default /tmp/ringflow-demo),
# RINGFLOW_DEMO_PORT (local MLflow port, default 5055), MLFLOW_EXPERIMENT_NAME
# (default ringflow-demo), MLFLOW_INSPECT_TRACING (default true).
# Uses $MLFLOW_TRACKING_URI if set, else starts a local MLflow server (SQLite)
# that keeps running afterwards so you can browse the results.
set -euo pipefail
. "$(dirname "$0")/rf_help.sh"
cd "$(dirname "$0")/.."
state=${RINGFLOW_DEMO_DIR:-/tmp/ringflow-demo}
mkdir -p "$state"
ring="/ringflow-demo-$$"
spool="$state/spool"
mkdir -p "$spool"
sidecar=""
cleanup() {
	[ -n "$sidecar" ] && kill "$sidecar" 2>/dev/null && wait "$sidecar" 2>/dev/null || true
	rm -f "/dev/shm$ring"
}
trap cleanup EXIT

echo "== 1. the ring: 4 processes x 2 threads -> one consumer"
./build/release/examples/ring_demo

echo
if [ -z "${MLFLOW_TRACKING_URI:-}" ]; then
	port=${RINGFLOW_DEMO_PORT:-5055}
	export MLFLOW_TRACKING_URI="http://127.0.0.1:$port"
	if ! curl -sf "$MLFLOW_TRACKING_URI/health" >/dev/null 2>&1; then
		echo "== starting a local MLflow server on $MLFLOW_TRACKING_URI (SQLite in $state)"
		# MLFLOW_MODEL_CATALOG_URI="": the first LLM span naming a provider
		# makes the server fetch a model price catalog; offline that stalls
		# ~7 s per attempt. Empty turns the fetch off (no cost metadata).
		MLFLOW_DISABLE_TELEMETRY=true MLFLOW_MODEL_CATALOG_URI="" setsid .venv/bin/mlflow server \
			--backend-store-uri "sqlite:///$state/mlflow.db" \
			--artifacts-destination "$state/artifacts" --serve-artifacts \
			--host 127.0.0.1 --port "$port" --workers 1 >"$state/mlflow.log" 2>&1 &
		echo $! >"$state/mlflow.pid"
		for _ in $(seq 1 120); do
			curl -sf "$MLFLOW_TRACKING_URI/health" >/dev/null 2>&1 && break
			sleep 0.5
		done
	fi
fi
curl -sf "$MLFLOW_TRACKING_URI/health" >/dev/null || { echo "MLflow at $MLFLOW_TRACKING_URI is not answering"; exit 1; }
export MLFLOW_EXPERIMENT_NAME=${MLFLOW_EXPERIMENT_NAME:-ringflow-demo}

# Traces of each sample (MLflow's trace UI), as inspect-mlflow's switch.
export MLFLOW_INSPECT_TRACING=${MLFLOW_INSPECT_TRACING:-true}
export RINGFLOW_RING=$ring RINGFLOW_SPOOL_DIR=$spool

echo "== 2. ringflowd -> $MLFLOW_TRACKING_URI (experiment $MLFLOW_EXPERIMENT_NAME)"
./build/release/bin/ringflowd 2>"$state/ringflowd.log" &
sidecar=$!
for _ in $(seq 1 100); do
	grep -q "serving ring" "$state/ringflowd.log" && break
	kill -0 "$sidecar" 2>/dev/null || { cat "$state/ringflowd.log"; exit 1; }
	sleep 0.1
done
echo "== an Inspect eval (mockllm, tool calls, two scorers) with the ringflow hook"
RINGFLOW_AUTOSTART=0 INSPECT_LOG_LEVEL=warning \
	.venv/bin/python examples/demo_eval.py 20 "$state/logs"
echo "== waiting for the upload: ringflowd flush"
./build/release/bin/ringflowd flush --timeout 120
echo "== ringflowd status"
./build/release/bin/ringflowd status --interval 0 | sed -n '/^sidecar/,$p'
kill -TERM "$sidecar"; wait "$sidecar" || true; sidecar=""
.venv/bin/python - <<'PY'
import os
from mlflow.tracking import MlflowClient
uri, name = os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_EXPERIMENT_NAME"]
c = MlflowClient(uri)
exp = c.get_experiment_by_name(name)
runs = c.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=50)
parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
child = children[0]
values = sum(len(c.get_metric_history(r.info.run_id, k)) for r in [parent] + children
             for k in r.data.metrics)
arts, todo = [], [(child.info.run_id, None)]
while todo:
    rid, path = todo.pop()
    for f in c.list_artifacts(rid, path):
        (todo.append((rid, f.path)) if f.is_dir else arts.append(f.path))
# Traces: what MLflow's trace UI shows for this parent's evaluation (0 when
# MLFLOW_INSPECT_TRACING is off or the sidecar does not send traces).
traces = 0
try:
    for r in children:  # each sample's trace is linked to its task run
        token = None
        while True:
            page = c.search_traces(locations=[exp.experiment_id], run_id=r.info.run_id,
                                   max_results=500, include_spans=False, page_token=token)
            traces += len(page)
            token = page.token
            if not token:
                break
except Exception as e:  # a server without the traces API: say so, count 0
    print(f"  (traces not searchable: {e})")
print(f"\nMLflow summary (experiment {name}):")
print(f"  runs:      parent {parent.info.run_name} ({parent.info.status}), "
      + ", ".join(f"task {r.info.run_name} ({r.info.status})" for r in children))
print(f"  metrics:   {len(child.data.metrics)} keys on the task run, {values} values in all, e.g. "
      + ", ".join(f"{k}={child.data.metrics[k]:g}" for k in ("grade/mean", "match/accuracy",
                  "total_samples", "cost/total_usd") if k in child.data.metrics))
print(f"  params:    {len(child.data.params)} on the task run")
print(f"  traces:    {traces}")
print(f"  artifacts: {len(arts)}: " + ", ".join(sorted(a.split('/')[-1] for a in arts)[:8])
      + (", ..." if len(arts) > 8 else ""))
print(f"\nOpen the parent run: {uri}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}")
PY
if [ -f "$state/mlflow.pid" ]; then
	echo "The MLflow server keeps running (data in $state); stop it with: kill \$(cat $state/mlflow.pid)"
fi
