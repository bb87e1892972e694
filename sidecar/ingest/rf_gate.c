/*
 * rf_gate.c - see rf_gate.h.
 */
#include <stdio.h>
#include <string.h>

#include "rf_gate.h"

void rf_gate_init(struct rf_gate *g, uint64_t spool_max, uint64_t pending_max, uint64_t now_ms)
{
	memset(g, 0, sizeof *g);
	g->spool_max = spool_max;
	g->pending_max = pending_max;
	g->away_ms = 2000;
	g->last_ok_ms = now_ms;
}

/* MLflow has had requests waiting and answered none for away_ms. */
static bool rf_gate_mlflow_away(const struct rf_gate *g, const struct rf_gate_in *in)
{
	return in->http_pending > 0 && in->now_ms - g->last_ok_ms >= g->away_ms;
}

static enum rf_gate_reason decide(const struct rf_gate *g, const struct rf_gate_in *in)
{
	if (in->journal_failing)
		return RF_GATE_JOURNAL;
	/* Hysteresis: once closed for memory, open only at half the bound. */
	if (g->pending_max && (g->reason == RF_GATE_MEMORY ? in->pending > g->pending_max / 2
							    : in->pending >= g->pending_max))
		return RF_GATE_MEMORY;
	if (g->trace_max && (g->reason == RF_GATE_MEMORY ? in->trace_bytes > g->trace_max / 2
							  : in->trace_bytes >= g->trace_max))
		return RF_GATE_MEMORY;
	if (g->spool_max && in->journal_bytes >= g->spool_max && rf_gate_mlflow_away(g, in))
		return RF_GATE_SPOOL_FULL;
	return RF_GATE_OPEN;
}

bool rf_gate_update(struct rf_gate *g, const struct rf_gate_in *in)
{
	/* Nothing waiting counts as answering: "away" needs unanswered requests. */
	if (in->http_ok != g->last_ok || in->http_pending == 0) {
		g->last_ok = in->http_ok;
		g->last_ok_ms = in->now_ms;
	}
	enum rf_gate_reason r = decide(g, in);
	if (r == g->reason)
		return false;
	if (g->reason != RF_GATE_OPEN)
		g->closed_ms += in->now_ms - g->closed_at;
	if (r != RF_GATE_OPEN) {
		if (g->reason == RF_GATE_OPEN)
			g->closed_at = in->now_ms;
		g->closes[r]++;
	}
	g->reason = r;
	return true;
}

void rf_gate_describe(const struct rf_gate *g, const struct rf_gate_in *in, char *buf, size_t cap)
{
	switch (g->reason) {
	case RF_GATE_OPEN:
		snprintf(buf, cap, "taking records from the ring again (journal %llu bytes, %llu entities pending)",
			 (unsigned long long)in->journal_bytes, (unsigned long long)in->pending);
		break;
	case RF_GATE_SPOOL_FULL:
		snprintf(buf, cap,
			 "spool full: the journal holds %llu bytes (bound %llu, RINGFLOW_SPOOL_MAX_MB) and "
			 "MLflow has answered nothing for %llu ms; taking no records from the ring until it "
			 "answers (producers spill to their own files meanwhile)",
			 (unsigned long long)in->journal_bytes, (unsigned long long)g->spool_max,
			 (unsigned long long)(in->now_ms - g->last_ok_ms));
		break;
	case RF_GATE_MEMORY:
		if (g->trace_max && in->trace_bytes > g->trace_max / 2 &&
		    !(g->pending_max && in->pending > g->pending_max / 2))
			snprintf(buf, cap,
				 "memory bound: traces held weigh %llu bytes (bound %llu, "
				 "RINGFLOW_TRACE_MEM_MB; open traces or traces partly sent); taking no "
				 "records from the ring until they drain to %llu",
				 (unsigned long long)in->trace_bytes, (unsigned long long)g->trace_max,
				 (unsigned long long)(g->trace_max / 2));
		else
			snprintf(buf, cap,
				 "memory bound: %llu entities wait for MLflow (bound %llu, "
				 "RINGFLOW_PENDING_MAX); taking no records from the ring until they "
				 "drain to %llu",
				 (unsigned long long)in->pending, (unsigned long long)g->pending_max,
				 (unsigned long long)(g->pending_max / 2));
		break;
	case RF_GATE_JOURNAL:
		snprintf(buf, cap,
			 "journal not writable (%s): taking no records from the ring until it is; the "
			 "batch taken stays in the ring until journaled",
			 strerror(in->journal_failing));
		break;
	}
}
