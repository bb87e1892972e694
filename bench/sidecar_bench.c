/*
 * sidecar_bench - ringflowd's decode + aggregate throughput per core.
 *
 *   sidecar_bench [--events N] [--sink URL]
 *
 * Pre-fills a private ring (1 GiB) with a synthetic evaluation encoded by
 * libringflow (per sample: sample_init, model_call x2, tool_call, score x2,
 * sample_end), then drains it exactly as ringflowd does: consume -> decode
 * (msgpack-c, validated) -> rf_track_record.  With --sink, the folded data
 * is also uploaded (log-batch) to that URL, a loopback HTTP sink, through
 * the same io_uring/libcurl path.  Prints one JSON line ("bench":"sidecar").
 * CPU time is the process's own (getrusage), so events/s per core excludes
 * the sink.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "rf_decode.h"
#include "rf_http.h"
#include "rf_loop.h"
#include "rf_mlflow.h"
#include "rf_ring.h"
#include "rf_track.h"
#include "ringflow.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void ids(rf_rec *r, long i)
{
	char uuid[32];
	snprintf(uuid, sizeof uuid, "uuid-%08ld", i);
	rf_rec_str(r, "run_id", "bench-run");
	rf_rec_str(r, "eval_id", "bench-eval");
	rf_rec_str(r, "task", "bench_task");
	rf_rec_str(r, "sample_uuid", uuid);
	rf_rec_int(r, "sample_id", i);
	rf_rec_int(r, "epoch", 1);
}

static long fill(rf_producer *p, long samples)
{
	long n = 0;
	rf_rec r;
	double t = 1795440000.0;
	rf_rec_begin(p, &r, RF_EV_RUN_START, 0);
	rf_rec_str(&r, "run_id", "bench-run");
	rf_rec_double(&r, "time", t);
	n += rf_rec_end(&r) == 0;
	rf_rec_begin(p, &r, RF_EV_TASK_START, 0);
	rf_rec_str(&r, "run_id", "bench-run");
	rf_rec_str(&r, "eval_id", "bench-eval");
	rf_rec_str(&r, "task", "bench_task");
	rf_rec_str(&r, "model", "mockllm/model");
	rf_rec_double(&r, "created", t);
	n += rf_rec_end(&r) == 0;
	for (long i = 0; i < samples; i++) {
		char u[32];
		rf_rec_begin(p, &r, RF_EV_SAMPLE_INIT, 0);
		ids(&r, i);
		rf_rec_str(&r, "input", "What is 6 x 7?");
		rf_rec_str(&r, "target", "42");
		n += rf_rec_end(&r) == 0;
		for (int k = 0; k < 2; k++) {
			rf_rec_begin(p, &r, RF_EV_MODEL_CALL, 0);
			ids(&r, i);
			snprintf(u, sizeof u, "m-%ld-%d", i, k);
			rf_rec_str(&r, "event_uuid", u);
			rf_rec_str(&r, "model", "mockllm/model");
			rf_rec_double(&r, "timestamp", t + i * 0.01);
			rf_rec_double(&r, "completed", t + i * 0.01 + 0.005);
			rf_rec_double(&r, "working_time", 0.005);
			rf_rec_int(&r, "input_tokens", 120);
			rf_rec_int(&r, "output_tokens", 8);
			rf_rec_int(&r, "total_tokens", 128);
			rf_rec_str(&r, "response", "ANSWER: 42");
			n += rf_rec_end(&r) == 0;
		}
		rf_rec_begin(p, &r, RF_EV_TOOL_CALL, 0);
		ids(&r, i);
		snprintf(u, sizeof u, "t-%ld", i);
		rf_rec_str(&r, "event_uuid", u);
		rf_rec_str(&r, "function", "multiply");
		rf_rec_str(&r, "result", "42");
		rf_rec_double(&r, "completed", t + i * 0.01 + 0.006);
		rf_rec_double(&r, "working_time", 0.001);
		n += rf_rec_end(&r) == 0;
		for (int k = 0; k < 2; k++) {
			rf_rec_begin(p, &r, RF_EV_SCORE, 0);
			ids(&r, i);
			rf_rec_str(&r, "scorer", k ? "match" : "grade");
			rf_rec_str(&r, "value", "C");
			n += rf_rec_end(&r) == 0;
		}
		rf_rec_begin(p, &r, RF_EV_SAMPLE_END, 0);
		ids(&r, i);
		rf_rec_double(&r, "completed_at", t + i * 0.01 + 0.01);
		rf_rec_double(&r, "total_time", 0.01);
		rf_rec_double(&r, "working_time", 0.006);
		rf_rec_map_begin(&r, "scores");
		rf_rec_map_begin(&r, "grade");
		rf_rec_str(&r, "value", "C");
		rf_rec_map_end(&r);
		rf_rec_map_begin(&r, "match");
		rf_rec_str(&r, "value", "C");
		rf_rec_map_end(&r);
		rf_rec_map_end(&r);
		n += rf_rec_end(&r) == 0;
	}
	return n;
}

struct ctx {
	rf_track *track;
	long records, malformed;
};

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct ctx *c = arg;
	rf_decoded d;
	if (rf_decode(&d, rec->data, rec->len) == 0)
		rf_track_record(c->track, rec->type, d.root);
	else
		c->malformed++;
	rf_decoded_free(&d);
	c->records++;
	return 0;
}

int main(int argc, char **argv)
{
	long events = 1000000;
	const char *sink = NULL;
	static const struct option o[] = {{"events", required_argument, 0, 'n'},
					  {"sink", required_argument, 0, 's'},
					  {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	int ch;
	while ((ch = getopt_long(argc, argv, "n:s:h", o, NULL)) != -1) {
		if (ch == 'n')
			events = atol(optarg);
		else if (ch == 's')
			sink = optarg;
		else {
			fprintf(ch == 'h' ? stdout : stderr,
				"usage: sidecar_bench [--events N] [--sink URL]\n");
			return ch == 'h' ? 0 : 2;
		}
	}
	char name[64];
	snprintf(name, sizeof name, "/rf-bench-sidecar-%d", (int)getpid());
	rf_ring *ring;
	struct rf_ring_opts ro = {.capacity = 1u << 30, .flags = RF_RING_CREATE | RF_RING_CONSUMER};
	if (rf_ring_open(&ring, name, &ro)) {
		fprintf(stderr, "%s\n", rf_ring_errmsg());
		return 1;
	}
	rf_producer *p;
	struct rf_producer_opts po = {.ring = name};
	rf_producer_open(&p, &po);
	long filled = fill(p, events / 7);
	rf_producer_close(p);

	rf_loop *loop;
	rf_http *http;
	rf_mlflow *m;
	struct ctx c = {0};
	rf_loop_new(&loop);
	rf_http_new(&http, loop, NULL);
	rf_mlflow_new(&m, http, sink ? sink : "http://127.0.0.1:9");
	struct rf_track_opts to = {.experiment = "bench", .metrics_ms = 200, .max_batch = 1000};
	rf_track_new(&c.track, m, &to);

	double w0 = now_s(), c0 = cpu_s();
	for (;;) {
		int n = rf_ring_consume(ring, on_rec, &c, 4096);
		if (sink) {
			rf_track_pump(c.track, false);
			rf_loop_run_once(loop, 0);
		}
		if (n <= 0)
			break;
	}
	double decode_wall = now_s() - w0, decode_cpu = cpu_s() - c0;
	double upload_wall = 0;
	struct rf_track_stats ts;
	if (sink) { /* finish the uploads: what the sidecar does after the eval */
		double u0 = now_s();
		while (now_s() - u0 < 120) {
			rf_track_pump(c.track, true);
			rf_loop_run_once(loop, 5);
			rf_track_stats(c.track, &ts);
			if (ts.pending == 0 && rf_http_pending(http) == 0 && ts.runs_created)
				break;
		}
		upload_wall = now_s() - u0;
	}
	rf_track_stats(c.track, &ts);
	struct rf_http_stats hs;
	rf_http_stats(http, &hs);
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"bench\":\"sidecar\",\"events\":%ld,\"malformed\":%ld,\"decode_aggregate_wall_s\":%.4f,"
	       "\"decode_aggregate_cpu_s\":%.4f,\"events_per_s_per_core\":%.0f,\"uploads\":%s,"
	       "\"upload_after_s\":%.3f,\"metrics\":%llu,\"http_requests\":%llu,\"peak_rss_mb\":%.1f}\n",
	       c.records, c.malformed, decode_wall, decode_cpu,
	       (double)c.records / (decode_cpu > 0 ? decode_cpu : 1e-9), sink ? "true" : "false",
	       upload_wall, (unsigned long long)ts.metrics, (unsigned long long)hs.requests,
	       (double)ru.ru_maxrss / 1024.0);
	(void)filled;
	rf_track_free(c.track);
	rf_mlflow_free(m);
	rf_http_free(http);
	rf_loop_free(loop);
	rf_ring_close(ring);
	rf_ring_unlink(name);
	return c.malformed ? 1 : 0;
}
