/*
 * trace_demo - a C program that sends an MLflow trace through libringflow.
 *
 *   trace_demo [question]        (ring from $RINGFLOW_RING; ringflowd uploads)
 *
 * One "answer" trace: an AGENT root with a RETRIEVER child (with an event), an
 * LLM child that fails once (an exception) and a TOOL span ended from a
 * callback thread (explicit parent), trace tags and metadata, a feedback
 * while it runs, a tag and an expectation after it ended; then a trace
 * that is sampled out (rate 0: nothing is written).  Prints the trace id.
 *
 *   cc trace_demo.c $(pkg-config --cflags --libs ringflow)
 */
#include <pthread.h>
#include <stdio.h>

#include "ringflow.h"

static const char *retrieve(const char *q)
{
	rf_span *s = rf_span_start("retrieve", RF_SPAN_RETRIEVER,
				   RF_KVS(RF_STR("query", q), RF_INT("k", 2)));
	rf_span_add_event(s, "index_lookup", RF_KVS(RF_INT("shards", 3), RF_BOOL("hit", true)));
	static const char *docs = "d0: Rayleigh scattering; d1: sunlight";
	rf_span_end(s, RF_KVS(RF_STR(NULL, docs)));
	return docs;
}

static int generate(const char *prompt, int attempt)
{
	rf_span *s = rf_span_start("generate", RF_SPAN_LLM,
				   RF_KVS(RF_STR("prompt", prompt), RF_INT("attempt", attempt)));
	rf_span_set_attrs(s, RF_KVS(RF_STR("model", "mock-1"), RF_DOUBLE("temperature", 0.2)));
	if (attempt == 1) {
		rf_span_record_exception(s, "TimeoutError", "model took too long", "generate()\nmain()");
		rf_span_end(s, NULL, 0);
		return -1;
	}
	rf_span_end(s, RF_KVS(RF_STR("text", "Because of Rayleigh scattering."),
			      RF_INT("tokens", 7)));
	return 0;
}

static void *on_done(void *arg) /* a callback on another thread ends the span */
{
	rf_span *s = arg;
	rf_span_set_status(s, RF_STATUS_CANCELLED, "user closed the tab");
	rf_span_end(s, RF_KVS(RF_STR(NULL, "notified")));
	return NULL;
}

int main(int argc, char **argv)
{
	const char *q = argc > 1 ? argv[1] : "why is the sky blue?";
	rf_span *root = rf_span_start("answer", RF_SPAN_AGENT, RF_KVS(RF_STR("question", q)));
	rf_trace_update(root, RF_KVS(RF_STR("session", "s-42"), RF_STR("lang", "c")),
			RF_KVS(RF_STR("user_group", "beta")));
	const char *docs = retrieve(q);
	for (int attempt = 1; generate(docs, attempt) != 0; attempt++)
		;
	rf_span *cb = rf_span_start_with(root, "notify", RF_SPAN_TOOL, RF_KVS(RF_STR("channel", "ui")));
	pthread_t t;
	pthread_create(&t, NULL, on_done, cb);
	pthread_join(t, NULL);
	/* A score while the trace is open: it goes with the trace's info. */
	rf_trace_log_assessment(NULL, NULL, /* the current span's trace */
				&(struct rf_assessment){.name = "relevance",
							.value = &RF_DOUBLE(NULL, 0.9),
							.rationale = "cites the cause",
							.source_type = "LLM_JUDGE",
							.source_id = "judge-1"});
	char id[36];
	rf_span_trace_id(root, id);
	rf_span_end(root, RF_KVS(RF_STR("answer", "Because of Rayleigh scattering.")));
	/* After it ended, by its id: the sidecar adds them (or calls MLflow). */
	rf_trace_set_tag(NULL, id, "reviewed", "yes");
	rf_trace_log_assessment(NULL, id,
				&(struct rf_assessment){.kind = RF_ASSESS_EXPECTATION,
							.name = "expected",
							.value = &RF_STR(NULL, "Rayleigh scattering")});

	rf_trace_set_sample_rate(0.0); /* this one is not recorded at all */
	rf_span *skipped = rf_span_start("sampled_out", RF_SPAN_CHAIN, NULL, 0);
	rf_span_end(rf_span_start("child", NULL, NULL, 0), NULL, 0);
	rf_span_end(skipped, NULL, 0);

	struct rf_trace_stats st;
	rf_trace_stats(&st);
	printf("%s\n", id);
	fprintf(stderr, "trace_demo: %llu traces, %llu spans, %llu sampled out, %llu errors\n",
		(unsigned long long)st.traces, (unsigned long long)st.spans,
		(unsigned long long)st.sampled_out, (unsigned long long)st.errors);
	return st.errors ? 1 : 0;
}
