/*
 * synthetic_eval - emit a synthetic Inspect-like evaluation through libringflow.
 *
 *   synthetic_eval [samples]     (default 10; ring from $RINGFLOW_RING)
 *
 * One run, one task, `samples` samples, each with a model call that asks for
 * a tool, the tool call, a second model call, and two scores (a letter grade
 * and a dict score); plus one record of every other type.  Run the sidecar
 * (or ringflow-dump) on the same ring to see the records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringflow.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int emitted[RF_EV_MAX_BUILTIN + 1];

#define EMIT(p, rec, type, body)                                                 \
	do {                                                                     \
		if (rf_rec_begin(p, &rec, type, 0) == 0) {                       \
			body;                                                    \
			if (rf_rec_end(&rec) == 0)                               \
				emitted[type]++;                                 \
			else                                                     \
				fprintf(stderr, "synthetic_eval: %s\n", rf_errmsg()); \
		} else {                                                         \
			fprintf(stderr, "synthetic_eval: %s\n", rf_errmsg());    \
		}                                                                \
	} while (0)

static void sample_ids(rf_rec *r, int i)
{
	char uuid[32];
	snprintf(uuid, sizeof uuid, "sample-uuid-%04d", i);
	rf_rec_str(r, "run_id", "synthetic-run");
	rf_rec_str(r, "eval_id", "synthetic-eval");
	rf_rec_str(r, "task", "synthetic_task");
	rf_rec_str(r, "sample_uuid", uuid);
	rf_rec_int(r, "sample_id", i + 1);
	rf_rec_int(r, "epoch", 1);
}

static void usage(rf_rec *r, int in, int out)
{
	rf_rec_int(r, "input_tokens", in);
	rf_rec_int(r, "output_tokens", out);
	rf_rec_int(r, "total_tokens", in + out);
	rf_rec_int(r, "input_tokens_cache_read", 0);
	rf_rec_int(r, "input_tokens_cache_write", 0);
	rf_rec_int(r, "reasoning_tokens", 0);
	rf_rec_double(r, "total_cost", (in + out) * 1e-6);
}

static void model_call(rf_producer *p, int i, int n, double t0, const char *resp)
{
	rf_rec r;
	char uuid[32];
	snprintf(uuid, sizeof uuid, "model-%04d-%d", i, n);
	EMIT(p, r, RF_EV_MODEL_CALL, {
		sample_ids(&r, i);
		rf_rec_str(&r, "event_uuid", uuid);
		rf_rec_str(&r, "span_id", "span-solver");
		rf_rec_str(&r, "model", "mockllm/model");
		rf_rec_nil(&r, "role");
		rf_rec_double(&r, "timestamp", t0);
		rf_rec_double(&r, "completed", t0 + 0.02);
		rf_rec_double(&r, "working_start", 0.001);
		rf_rec_double(&r, "working_time", 0.02);
		usage(&r, 100 + i, 10);
		rf_rec_double(&r, "temperature", 0.0);
		rf_rec_int(&r, "max_tokens", 256);
		rf_rec_nil(&r, "cache");
		rf_rec_int(&r, "retries", 0);
		rf_rec_nil(&r, "error");
		rf_rec_str(&r, "stop_reason", n == 0 ? "tool_calls" : "stop");
		rf_rec_int(&r, "input_messages", 2 + 2 * n);
		rf_rec_int(&r, "tool_calls", n == 0);
		rf_rec_str(&r, "response", resp);
	});
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: synthetic_eval [SAMPLES]\n  one run, one task, SAMPLES (default 10) samples"
		       " with model and tool calls and two scores,\n  into the ring $RINGFLOW_RING"
		       " (default /ringflow-<uid>; created if missing)\n");
		return 0;
	}
	int samples = argc > 1 ? atoi(argv[1]) : 10;
	rf_producer *p;
	if (rf_producer_open(&p, NULL)) {
		fprintf(stderr, "synthetic_eval: %s\n", rf_errmsg());
		return 1;
	}
	rf_rec r;
	char host[64] = "";
	gethostname(host, sizeof host - 1);
	EMIT(p, r, RF_EV_EVAL_SET_START, {
		rf_rec_str(&r, "eval_set_id", "synthetic-set");
		rf_rec_str(&r, "log_dir", "/tmp/synthetic-logs");
		rf_rec_double(&r, "time", now());
	});
	EMIT(p, r, RF_EV_RUN_START, {
		rf_rec_str(&r, "run_id", "synthetic-run");
		rf_rec_str(&r, "eval_set_id", "synthetic-set");
		rf_rec_array_begin(&r, "task_names");
		rf_rec_str(&r, NULL, "synthetic_task");
		rf_rec_array_end(&r);
		rf_rec_double(&r, "time", now());
		rf_rec_int(&r, "pid", getpid());
		rf_rec_str(&r, "host", host);
	});
	EMIT(p, r, RF_EV_TASK_START, {
		rf_rec_str(&r, "run_id", "synthetic-run");
		rf_rec_str(&r, "eval_id", "synthetic-eval");
		rf_rec_str(&r, "task", "synthetic_task");
		rf_rec_int(&r, "task_version", 0);
		rf_rec_str(&r, "model", "mockllm/model");
		rf_rec_map_begin(&r, "model_args");
		rf_rec_str(&r, "api_key", "this-is-never-written");
		rf_rec_map_end(&r);
		rf_rec_map_begin(&r, "generate_config");
		rf_rec_double(&r, "temperature", 0.0);
		rf_rec_int(&r, "max_tokens", 256);
		rf_rec_map_end(&r);
		rf_rec_map_begin(&r, "dataset");
		rf_rec_str(&r, "name", "synthetic");
		rf_rec_int(&r, "samples", samples);
		rf_rec_map_end(&r);
		rf_rec_str(&r, "solver", "use_tools,generate");
		rf_rec_array_begin(&r, "scorers");
		rf_rec_str(&r, NULL, "grade");
		rf_rec_str(&r, NULL, "rubric");
		rf_rec_array_end(&r);
		rf_rec_int(&r, "epochs", 1);
		rf_rec_double(&r, "created", now());
	});
	for (int i = 0; i < samples; i++) {
		double t0 = now();
		EMIT(p, r, RF_EV_SAMPLE_INIT, { sample_ids(&r, i); rf_rec_str(&r, "input", "What is 6 x 7?"); rf_rec_str(&r, "target", "42"); rf_rec_double(&r, "time", t0); });
		EMIT(p, r, RF_EV_SAMPLE_START, { sample_ids(&r, i); rf_rec_double(&r, "time", t0); });
		EMIT(p, r, RF_EV_ATTEMPT_START, { sample_ids(&r, i); rf_rec_int(&r, "attempt", 1); rf_rec_double(&r, "time", t0); });
		EMIT(p, r, RF_EV_SPAN_BEGIN, { sample_ids(&r, i); rf_rec_str(&r, "event_uuid", "sb"); rf_rec_str(&r, "span_id", "span-solver"); rf_rec_nil(&r, "parent_id"); rf_rec_str(&r, "span_type", "solver"); rf_rec_str(&r, "name", "generate"); rf_rec_double(&r, "timestamp", t0); rf_rec_double(&r, "working_start", 0); });
		model_call(p, i, 0, t0, "");
		EMIT(p, r, RF_EV_TOOL_CALL, {
			sample_ids(&r, i);
			rf_rec_str(&r, "event_uuid", "tool");
			rf_rec_str(&r, "span_id", "span-solver");
			rf_rec_str(&r, "tool_call_id", "call-1");
			rf_rec_str(&r, "function", "multiply");
			rf_rec_map_begin(&r, "arguments");
			rf_rec_int(&r, "a", 6);
			rf_rec_int(&r, "b", 7);
			rf_rec_map_end(&r);
			rf_rec_str(&r, "result", "42");
			rf_rec_nil(&r, "error");
			rf_rec_double(&r, "timestamp", t0 + 0.02);
			rf_rec_double(&r, "completed", t0 + 0.021);
			rf_rec_double(&r, "working_time", 0.001);
		});
		model_call(p, i, 1, t0 + 0.021, "ANSWER: 42");
		EMIT(p, r, RF_EV_SPAN_END, { sample_ids(&r, i); rf_rec_str(&r, "event_uuid", "se"); rf_rec_str(&r, "span_id", "span-solver"); rf_rec_double(&r, "timestamp", t0 + 0.05); });
		EMIT(p, r, RF_EV_SAMPLE_SCORING, { sample_ids(&r, i); rf_rec_double(&r, "time", t0 + 0.05); });
		EMIT(p, r, RF_EV_SCORE, { sample_ids(&r, i); rf_rec_str(&r, "event_uuid", "score-1"); rf_rec_str(&r, "scorer", "grade"); rf_rec_str(&r, "value", i % 3 ? "C" : "I"); rf_rec_str(&r, "answer", "42"); rf_rec_str(&r, "explanation", "exact match"); rf_rec_str(&r, "target", "42"); rf_rec_bool(&r, "intermediate", false); rf_rec_double(&r, "timestamp", t0 + 0.05); });
		EMIT(p, r, RF_EV_SCORE, { sample_ids(&r, i); rf_rec_str(&r, "event_uuid", "score-2"); rf_rec_str(&r, "scorer", "rubric"); rf_rec_map_begin(&r, "value"); rf_rec_double(&r, "accuracy", 1.0); rf_rec_double(&r, "style", 0.5); rf_rec_map_end(&r); rf_rec_bool(&r, "intermediate", false); rf_rec_double(&r, "timestamp", t0 + 0.05); });
		EMIT(p, r, RF_EV_ATTEMPT_END, { sample_ids(&r, i); rf_rec_int(&r, "attempt", 1); rf_rec_nil(&r, "error"); rf_rec_bool(&r, "will_retry", false); rf_rec_double(&r, "time", t0 + 0.06); });
		EMIT(p, r, RF_EV_SAMPLE_END, {
			sample_ids(&r, i);
			rf_rec_str(&r, "status", "success");
			rf_rec_nil(&r, "error");
			rf_rec_double(&r, "started_at", t0);
			rf_rec_double(&r, "completed_at", t0 + 0.06);
			rf_rec_double(&r, "total_time", 0.06);
			rf_rec_double(&r, "working_time", 0.041);
			rf_rec_str(&r, "output", "ANSWER: 42");
			rf_rec_map_begin(&r, "scores");
			rf_rec_map_begin(&r, "grade");
			rf_rec_str(&r, "value", i % 3 ? "C" : "I");
			rf_rec_map_end(&r);
			rf_rec_map_end(&r);
			rf_rec_double(&r, "time", t0 + 0.06);
		});
	}
	EMIT(p, r, RF_EV_ERROR, { sample_ids(&r, 0); rf_rec_str(&r, "event_uuid", "err"); rf_rec_str(&r, "message", "synthetic error"); rf_rec_str(&r, "traceback", "Traceback ..."); rf_rec_double(&r, "timestamp", now()); });
	EMIT(p, r, RF_EV_SAMPLE_LIMIT, { sample_ids(&r, 0); rf_rec_str(&r, "event_uuid", "lim"); rf_rec_str(&r, "limit_type", "token"); rf_rec_str(&r, "message", "token limit"); rf_rec_double(&r, "limit", 1000); rf_rec_double(&r, "timestamp", now()); });
	EMIT(p, r, RF_EV_MODEL_RETRY, { rf_rec_str(&r, "run_id", "synthetic-run"); rf_rec_str(&r, "model", "mockllm/model"); rf_rec_int(&r, "attempt", 1); rf_rec_double(&r, "wait_time", 0.5); rf_rec_str(&r, "exception_type", "RateLimitError"); rf_rec_int(&r, "status_code", 429); rf_rec_double(&r, "time", now()); });
	EMIT(p, r, RF_EV_MODEL_USAGE, { rf_rec_str(&r, "run_id", "synthetic-run"); rf_rec_str(&r, "model", "mockllm/model"); usage(&r, 10, 2); rf_rec_double(&r, "call_duration", 0.02); rf_rec_double(&r, "time", now()); });
	EMIT(p, r, RF_EV_MODEL_CACHE_USAGE, { rf_rec_str(&r, "model", "mockllm/model"); usage(&r, 10, 2); rf_rec_double(&r, "time", now()); });
	EMIT(p, r, RF_EV_LOG, { rf_rec_str(&r, "level", "warning"); rf_rec_str(&r, "name", "inspect_ai"); rf_rec_str(&r, "message", "synthetic warning"); rf_rec_double(&r, "created", now()); });
	EMIT(p, r, RF_EV_TASK_END, {
		rf_rec_str(&r, "run_id", "synthetic-run");
		rf_rec_str(&r, "eval_id", "synthetic-eval");
		rf_rec_str(&r, "task", "synthetic_task");
		rf_rec_str(&r, "status", "success");
		rf_rec_int(&r, "total_samples", samples);
		rf_rec_int(&r, "completed_samples", samples);
		rf_rec_double(&r, "time", now());
	});
	EMIT(p, r, RF_EV_RUN_END, { rf_rec_str(&r, "run_id", "synthetic-run"); rf_rec_nil(&r, "exception"); rf_rec_double(&r, "time", now()); });
	EMIT(p, r, RF_EV_EVAL_SET_END, { rf_rec_str(&r, "eval_set_id", "synthetic-set"); rf_rec_str(&r, "log_dir", "/tmp/synthetic-logs"); rf_rec_double(&r, "time", now()); });
	int total = 0;
	for (int t = 1; t <= RF_EV_MAX_BUILTIN; t++)
		total += emitted[t];
	struct rf_producer_stats st;
	rf_producer_stats(p, &st);
	printf("synthetic_eval: %d samples, %d records (%llu redacted, %llu errors)\n", samples,
	       total, (unsigned long long)st.redacted, (unsigned long long)st.errors);
	rf_producer_close(p);
	return st.errors ? 1 : 0;
}
