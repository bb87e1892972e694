/*
 * test_err - the error contract (ringbuf/rf_err.h): a failure's code and
 * message, context prefixed by callers outermost first, a system error's
 * text, long messages cut (never overflowed), one error per thread, and the
 * public names (rf_ring_errmsg, rf_errmsg) reading the same error; a module's
 * handled failures reported to its owner's sink.
 */
#include <errno.h>
#include <pthread.h>

#include "rf_err.h"
#include "rf_ring.h"
#include "ringflow.h"
#include "rf_test.h"

static int inner(void)
{
	return rf_err_set(EINVAL, "record type %d outside 1..%d", 99, 31);
}

static int outer(void)
{
	int rc = inner();
	return rc < 0 ? rf_err_wrap("ring %s", "/rf-x") : 0;
}

static void *other_thread(void *arg)
{
	(void)arg;
	CHECK(!strcmp(rf_err_msg(), "no error")); /* not the main thread's error */
	CHECK_EQ(rf_err_code(), 0);
	CHECK_EQ(rf_err_set(-ENOSPC, "spill"), -ENOSPC);
	return NULL;
}

static char got[RF_ERR_MAX];
static void sink_fn(void *arg, const char *msg)
{
	snprintf(got, sizeof got, "%s:%s", (const char *)arg, msg);
}

int main(void)
{
	/* A sink gets each handled failure, formatted; the thread's error
	 * (a failing call's) is not touched; no sink, nothing happens. */
	rf_err_report(&(struct rf_err_sink){sink_fn, "track"}, "run %s: HTTP %d", "r1", 400);
	CHECK(!strcmp(got, "track:run r1: HTTP 400"));
	CHECK(!strcmp(rf_err_msg(), "no error"));
	rf_err_report(NULL, "nothing");
	rf_err_report(&(struct rf_err_sink){0}, "nothing");

	CHECK(!strcmp(rf_err_msg(), "no error"));
	CHECK_EQ(outer(), -EINVAL);
	CHECK(!strcmp(rf_err_msg(), "ring /rf-x: record type 99 outside 1..31"));
	CHECK_EQ(rf_err_code(), EINVAL);
	CHECK_EQ(rf_err_wrap("sidecar"), -EINVAL);
	CHECK(!strcmp(rf_err_msg(), "sidecar: ring /rf-x: record type 99 outside 1..31"));
	CHECK(!strcmp(rf_ring_errmsg(), rf_err_msg()));
	CHECK(!strcmp(rf_errmsg(), rf_err_msg()));

	CHECK_EQ(rf_err_set_sys(ENOENT, "open %s", "/x"), -ENOENT);
	char want[128];
	snprintf(want, sizeof want, "open /x: %s", strerror(ENOENT));
	CHECK(!strcmp(rf_err_msg(), want));
	CHECK_EQ(rf_err_set(0, "no code given"), -EIO); /* a failure always has one */

	char big[2 * RF_ERR_MAX];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	rf_err_set(E2BIG, "%s", big);
	CHECK_EQ(strlen(rf_err_msg()), (size_t)RF_ERR_MAX - 1);
	rf_err_wrap("%s", big);
	CHECK_EQ(strlen(rf_err_msg()), (size_t)RF_ERR_MAX - 1);
	CHECK_EQ(rf_err_code(), E2BIG);

	rf_err_set(EPERM, "mine");
	pthread_t t;
	CHECK(pthread_create(&t, NULL, other_thread, NULL) == 0);
	pthread_join(t, NULL);
	CHECK(!strcmp(rf_err_msg(), "mine"));
	CHECK_EQ(rf_err_code(), EPERM);
	rf_err_clear();
	CHECK(!strcmp(rf_err_msg(), "no error"));
	CHECK_EQ(rf_err_code(), 0);
	printf("test_err: codes, context, system errors, cut messages, per-thread errors\n");
	return RF_T_PASS;
}
