/*
 * rf_trace_pace.c - the in-flight limit of trace requests (rf_trace_pace.h).
 */
#include "rf_trace_pace.h"

void rf_trace_pace_init(struct rf_trace_pace *p)
{
	*p = (struct rf_trace_pace){.limit = RF_PACE_START, .rtt_min = UINT64_MAX,
				    .probe_min = UINT64_MAX};
}

int rf_trace_pace_limit(const struct rf_trace_pace *p)
{
	return p->probing ? 1 : p->limit;
}

void rf_trace_pace_answer(struct rf_trace_pace *p, uint64_t rtt_us, int alone, uint64_t now_ms)
{
	if (!rtt_us)
		rtt_us = 1;
	if (!p->next_probe)
		p->next_probe = now_ms + RF_PACE_PROBE_MS;
	if (rtt_us < p->rtt_min) /* any answer bounds the unloaded round trip */
		p->rtt_min = rtt_us;
	if (p->probing) {
		if (!alone)
			return; /* one sent before the probe: still queued behind others */
		if (rtt_us < p->probe_min)
			p->probe_min = rtt_us;
		if (--p->probing)
			return;
		p->rtt_min = p->probe_min; /* the server as it is now */
		p->probe_min = UINT64_MAX;
		p->rtt_avg = (double)p->rtt_min;
		p->answers = 0;
		p->next_probe = now_ms + RF_PACE_PROBE_MS;
		return;
	}
	p->rtt_avg = p->rtt_avg > 0 ? p->rtt_avg + ((double)rtt_us - p->rtt_avg) / 8.0
				    : (double)rtt_us;
	if (now_ms >= p->next_probe) {
		p->probing = RF_PACE_PROBES;
		return;
	}
	if (++p->answers < p->limit)
		return;
	p->answers = 0;
	double queued = p->limit * (1.0 - (double)p->rtt_min / p->rtt_avg);
	if (queued < RF_PACE_QUEUE_LO && p->limit < RF_PACE_MAX)
		p->limit++;
	else if (queued > RF_PACE_QUEUE_HI && p->limit > RF_PACE_MIN)
		p->limit--;
}
