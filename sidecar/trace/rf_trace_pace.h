/*
 * rf_trace_pace.h - how many trace requests to keep in flight to one server.
 *
 * MLflow serves a trace info in tens of ms of CPU, one request per worker at
 * a time; a server with one worker gains nothing from more requests in
 * flight (they only queue there, and a run's log-batch would queue behind
 * them), a server with four gains almost 4x.  The sidecar cannot ask how
 * many workers there are, so it measures, as TCP Vegas does: the round trip
 * of an unloaded request (the smallest seen lately) against the recent
 * average gives how many requests wait in the server's queue,
 *
 *     queued = limit * (1 - rtt_min / rtt_avg)
 *
 * and once per round (limit answers) the limit grows by one while fewer than
 * RF_PACE_QUEUE_LO wait and shrinks by one when more than RF_PACE_QUEUE_HI do.
 * One worker: the average is ~limit x the minimum, so queued = limit - 1 and
 * the limit stays at 2-4.  N workers: nothing queues until the limit passes
 * N, so it settles at N + 1..3.  Bounded by [RF_PACE_MIN, RF_PACE_MAX].
 *
 * The unloaded round trip can only be seen on a request sent alone: with
 * requests always in flight every answer includes queueing.  So every
 * RF_PACE_PROBE_MS the limit drops to 1 until RF_PACE_PROBES requests sent
 * alone have answered (as BBR's ProbeRTT), and their smallest round trip is
 * the new minimum: a server that turned slower is followed, one that turned
 * faster at once (any smaller round trip lowers the minimum).
 *
 * Pure logic over times the caller measures (tests/test_trace_pace.c runs it
 * against simulated servers).
 */
#ifndef RF_TRACE_PACE_H
#define RF_TRACE_PACE_H

#include <stdint.h>

#define RF_PACE_MIN 2
#define RF_PACE_START 3
#define RF_PACE_MAX 16
#define RF_PACE_QUEUE_LO 1.0
#define RF_PACE_QUEUE_HI 3.0
#define RF_PACE_PROBE_MS 10000
#define RF_PACE_PROBES 2

struct rf_trace_pace {
	int limit;
	int answers;               /* in this round */
	int probing;               /* alone answers still wanted (0: not probing) */
	double rtt_avg;            /* us, EWMA (1/8) */
	uint64_t rtt_min;          /* us */
	uint64_t probe_min;        /* us, smallest alone answer of this probe */
	uint64_t next_probe;       /* ms */
};

void rf_trace_pace_init(struct rf_trace_pace *p);
/* How many requests may be in flight now. */
int rf_trace_pace_limit(const struct rf_trace_pace *p);
/* A request answered (2xx) after rtt_us; `alone`: nothing else of ours was
 * in flight when it was sent; now_ms is the loop's clock. */
void rf_trace_pace_answer(struct rf_trace_pace *p, uint64_t rtt_us, int alone, uint64_t now_ms);

#endif
