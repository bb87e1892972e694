#!/usr/bin/env bash
# make demo: the main job end to end.
#   1. the ring alone: producer processes -> shared memory -> one consumer;
#   2. an Inspect AI eval (examples/demo_eval.py: mockllm, tool calls, two
#      scorers) with the ringflow hook -> ring -> ringflowd -> MLflow.
# Uses $MLFLOW_TRACKING_URI if set, else starts a local MLflow server (SQLite)
# that keeps running afterwards so you can browse the results.
set -euo pipefail
case "${1:-}" in -h | --help)
	sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"
	exit 0 ;;
esac
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
		MLFLOW_DISABLE_TELEMETRY=true setsid .venv/bin/mlflow server \
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

echo "== 2. ringflowd -> $MLFLOW_TRACKING_URI (experiment $MLFLOW_EXPERIMENT_NAME)"
RINGFLOW_RING=$ring RINGFLOW_SPOOL_DIR=$spool ./build/release/bin/ringflowd 2>"$state/ringflowd.log" &
sidecar=$!
sleep 0.3
echo "== an Inspect eval (mockllm, tool calls, two scorers) with the ringflow hook"
RINGFLOW_RING=$ring RINGFLOW_AUTOSTART=0 INSPECT_LOG_LEVEL=warning \
	.venv/bin/python examples/demo_eval.py 20 "$state/logs"
t0=$(date +%s.%N)
kill -TERM "$sidecar"; wait "$sidecar" || true; sidecar=""
echo "== ringflowd flushed and stopped $(.venv/bin/python -c "import time; print(round(time.time() - $t0, 2))") s after the eval; its summary:"
tail -n 1 "$state/ringflowd.log" | tr ' ' '\n' | grep -E '^(records|runs_created|metrics|params|batches|requests|artifacts|rejected|malformed)=' | paste -sd' '
.venv/bin/python - <<'PY'
import os
from mlflow.tracking import MlflowClient
uri, name = os.environ["MLFLOW_TRACKING_URI"], os.environ["MLFLOW_EXPERIMENT_NAME"]
c = MlflowClient(uri)
exp = c.get_experiment_by_name(name)
runs = c.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=50)
parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
child = next(r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id)
arts = [f.path for f in c.list_artifacts(child.info.run_id, "inspect")]
print(f"\nMLflow: parent run {parent.info.run_name} ({parent.info.status}), task run "
      f"{child.info.run_name} ({child.info.status})")
print(f"  {len(child.data.metrics)} metrics, e.g. " + ", ".join(
    f"{k}={child.data.metrics[k]:g}" for k in ("grade/mean", "match/accuracy", "total_samples",
                                              "cost/total_usd") if k in child.data.metrics))
print(f"  {len(child.data.params)} params, artifacts: {', '.join(a.split('/')[-1] for a in arts)}")
print(f"\nOpen: {uri}/#/experiments/{exp.experiment_id}/runs/{parent.info.run_id}")
PY
if [ -f "$state/mlflow.pid" ]; then
	echo "The MLflow server keeps running; stop it with: kill \$(cat $state/mlflow.pid)"
fi
