/*
 * ringflow-dump - drain a ring and print each record as one JSON line.
 *
 * A debugging and testing tool: it attaches as the ring's consumer (so it
 * cannot run beside ringflowd) and decodes every record with msgpack-c, the
 * same decoder the sidecar uses.  Malformed records are printed as errors
 * and counted, never skipped silently.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rf_clock.h"
#include "rf_decode.h"
#include "rf_ring.h"
#include "ringflow.h"

struct dump {
	uint64_t records, malformed;
	long max;
	bool discard;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int on_rec(const struct rf_ring_rec *rec, void *arg)
{
	struct dump *d = arg;
	if (d->discard) {
		d->records++;
		return 0;
	}
	rf_decoded dec;
	json_t *line = json_object();
	const char *name = rf_event_name(rec->type);
	json_object_set_new(line, "type", name ? json_string(name) : json_null());
	json_object_set_new(line, "type_id", json_integer(rec->type));
	json_object_set_new(line, "pos", json_integer((json_int_t)rec->pos));
	json_object_set_new(line, "sub", json_integer(rec->sub));
	json_object_set_new(line, "spilled", json_boolean(rec->flags & RF_RING_REC_SPILLED));
	if (rf_decode(&dec, rec->data, rec->len) == 0) {
		json_object_set_new(line, "data", rf_obj_to_json(dec.root));
	} else {
		json_object_set_new(line, "error", json_string(rf_err_msg()));
		d->malformed++;
	}
	rf_decoded_free(&dec);
	char *s = json_dumps(line, JSON_COMPACT);
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(line);
	d->records++;
	return d->max > 0 && (long)d->records >= d->max;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: ringflow-dump [--ring NAME] [--idle-ms N] [--count N] [--discard] [--group]\n"
		   "  Drains the ring (default $RINGFLOW_RING or /ringflow-<uid>) as its consumer\n"
		   "  and prints one JSON object per record.  Exits after --count records, or\n"
		   "  after the ring stayed empty for --idle-ms (default 500; 0 = follow).\n"
		   "  --discard consumes without decoding or printing (a fast drain).\n"
		   "  --group accepts a group member's ring (as RINGFLOW_RING_GROUP=1).\n"
		   "  A summary goes to stderr.  Exit 1 if any record was malformed.\n");
}

int main(int argc, char **argv)
{
	const char *ring = NULL;
	long idle_ms = 500;
	struct dump d = {0};
	static const struct option opts[] = {{"ring", required_argument, 0, 'r'},
					     {"idle-ms", required_argument, 0, 'i'},
					     {"count", required_argument, 0, 'c'},
					     {"discard", no_argument, 0, 'd'},
					     {"group", no_argument, 0, 'g'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "r:i:c:dgh", opts, NULL)) != -1) {
		switch (c) {
		case 'r': ring = optarg; break;
		case 'i': idle_ms = strtol(optarg, NULL, 10); break;
		case 'c': d.max = strtol(optarg, NULL, 10); break;
		case 'd': d.discard = true; break;
		case 'g': setenv("RINGFLOW_RING_GROUP", "1", 1); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rf_ring *r;
	struct rf_ring_opts o = {.flags = RF_RING_CREATE | RF_RING_CONSUMER};
	int rc = rf_ring_open(&r, ring, &o);
	if (rc) {
		fprintf(stderr, "ringflow-dump: %s\n", rf_ring_errmsg());
		return 2;
	}
	uint64_t t0 = rf_now_ms();
	while (!stop) {
		int n = rf_ring_consume(r, on_rec, &d, 4096);
		if (n < 0) {
			fprintf(stderr, "ringflow-dump: %s\n", rf_ring_errmsg());
			break;
		}
		if (d.max > 0 && (long)d.records >= d.max)
			break;
		uint64_t now = rf_now_ms();
		if (n > 0) {
			t0 = now;
			continue;
		}
		if (idle_ms > 0 && now - t0 >= (uint64_t)idle_ms)
			break;
		rf_ring_wait(r, 50000000);
	}
	fflush(stdout);
	struct rf_ring_stats st;
	rf_ring_stats(r, &st);
	fprintf(stderr, "ringflow-dump: %llu records, %llu malformed; ring spilled %llu, dropped %llu, "
		"abandoned %llu, spill_failed %llu\n", (unsigned long long)d.records,
		(unsigned long long)d.malformed, (unsigned long long)st.spilled,
		(unsigned long long)st.dropped, (unsigned long long)st.abandoned,
		(unsigned long long)st.spill_failed);
	rf_ring_close(r);
	return d.malformed ? 1 : 0;
}
