/*
 * test_trace_env - ringflow's on/off rule for its environment variables
 * (ringbuf/rf_env.h, the same as ringflow/_env.py and README.md) and the
 * tracing API's configuration read through it, without printing:
 *  - the words: 1/true/yes/on on, 0/false/no/off off (any case, blanks
 *    around ignored), unset or blank the default, anything else on;
 *  - RINGFLOW_DISABLED=0 / false and RINGFLOW_TRACE_DISABLED=off leave
 *    tracing on (they used to turn it off); on / y / 1 turn it off;
 *  - RINGFLOW_RING_GROUP follows the same rule;
 *  - a bad sample rate and a ring that cannot be opened write nothing to
 *    the host program's stderr: they are counted (config_ignored, errors)
 *    and explained by rf_errmsg();
 *  - the sampling rate: the first usable of RINGFLOW_TRACE_SAMPLE_RATE and
 *    MLFLOW_TRACE_SAMPLING_RATIO, as ringflow.tracing reads them.
 * The configuration is read once per process, so each case runs in a
 * child forked before anything read it.
 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "rf_env.h"
#include "rf_ring.h"
#include "rf_test.h"
#include "rf_trace_int.h" /* rf_trace_sample_rate() */
#include "ringflow.h"

static void test_words(void)
{
	static const struct {
		const char *v;
		int want;
	} cases[] = {
		{NULL, -1}, {"", -1}, {" \t\n", -1},
		{"1", 1}, {"true", 1}, {"TRUE", 1}, {" yes\n", 1}, {"On", 1},
		{"0", 0}, {"false", 0}, {"No", 0}, {"OFF ", 0},
		{"y", 2}, {"2", 2}, {"disable", 2}, {"of", 2}, {"onn", 2}, {"-1", 2},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		if (rf_flag_word(cases[i].v) != cases[i].want)
			fprintf(stderr, "value \"%s\"\n", cases[i].v ? cases[i].v : "(null)");
		CHECK_EQ(rf_flag_word(cases[i].v), cases[i].want);
	}
	unsetenv("RF_TEST_FLAG");
	CHECK(rf_env_flag("RF_TEST_FLAG", true) && !rf_env_flag("RF_TEST_FLAG", false));
	setenv("RF_TEST_FLAG", " ", 1);
	CHECK(rf_env_flag("RF_TEST_FLAG", true) && !rf_env_flag("RF_TEST_FLAG", false));
	setenv("RF_TEST_FLAG", "no", 1);
	CHECK(!rf_env_flag("RF_TEST_FLAG", true));
	setenv("RF_TEST_FLAG", "whatever", 1);
	CHECK(rf_env_flag("RF_TEST_FLAG", false));
	unsetenv("RF_TEST_FLAG");

	setenv("RINGFLOW_RING_GROUP", "on", 1);
	CHECK(rf_ring_group_requested());
	setenv("RINGFLOW_RING_GROUP", "0", 1);
	CHECK(!rf_ring_group_requested());
	unsetenv("RINGFLOW_RING_GROUP");
	CHECK(!rf_ring_group_requested());
	printf("words: on/off/default/anything else as rf_env.h says\n");
}

/* fn(arg) in a child forked now, before this process read the tracing
 * configuration (read once per process): the child's exit status (a failed
 * CHECK in it exits RF_T_FAIL). */
static int in_child(int (*fn)(const void *), const void *arg)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0)
		_exit(fn(arg));
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st));
	return WEXITSTATUS(st);
}

struct switches {
	const char *disabled, *trace_disabled; /* NULL: unset */
	bool on;
};

static void set_or_unset(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

static int enabled_child(const void *arg)
{
	const struct switches *c = arg;
	set_or_unset("RINGFLOW_DISABLED", c->disabled);
	set_or_unset("RINGFLOW_TRACE_DISABLED", c->trace_disabled);
	return rf_trace_enabled() ? 10 : 11;
}

static void test_switches(void)
{
	static const struct switches cases[] = {
		{NULL, NULL, true},     {"", "", true},        {"0", NULL, true},
		{"false", NULL, true},  {"OFF", "no", true},   {NULL, "off", true},
		{NULL, "0", true},      {"1", NULL, false},    {"on", NULL, false},
		{"y", NULL, false},     {NULL, "yes", false},  {NULL, "1", false},
		{"0", "true", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int rc = in_child(enabled_child, &cases[i]);
		CHECK(rc == 10 || rc == 11);
		bool on = rc == 10;
		if (on != cases[i].on)
			fprintf(stderr, "RINGFLOW_DISABLED=%s RINGFLOW_TRACE_DISABLED=%s: tracing %s\n",
				cases[i].disabled ? cases[i].disabled : "(unset)",
				cases[i].trace_disabled ? cases[i].trace_disabled : "(unset)",
				on ? "on" : "off");
		CHECK(on == cases[i].on);
	}
	printf("switches: RINGFLOW_DISABLED=0/false and RINGFLOW_TRACE_DISABLED=off leave "
	       "tracing on\n");
}

/* A bad sample rate and an unopenable ring: counted and explained, never
 * printed on the host program's stderr. */
static int silent_child(const void *arg)
{
	(void)arg;
	char longname[300];
	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	unsetenv("RINGFLOW_DISABLED");
	unsetenv("RINGFLOW_TRACE_DISABLED");
	setenv("RINGFLOW_TRACE_SAMPLE_RATE", "2", 1);
	unsetenv("MLFLOW_TRACE_SAMPLING_RATIO");
	setenv("RINGFLOW_RING", longname, 1); /* the library's own open fails */
	char path[] = "/tmp/rf-test-trace-env-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	unlink(path);
	int saved = dup(2);
	CHECK(saved >= 0 && dup2(fd, 2) == 2);

	double rate = rf_trace_sample_rate();
	char rate_msg[512];
	snprintf(rate_msg, sizeof rate_msg, "%s", rf_errmsg());
	rf_span *a = rf_span_start("a", RF_SPAN_CHAIN, NULL, 0);
	bool a_rec = rf_span_recording(a);
	rf_span_end(a, NULL, 0);
	rf_span *b = rf_span_start_with(NULL, "b", RF_SPAN_CHAIN, NULL, 0);
	rf_span_end(b, NULL, 0);
	char open_msg[512];
	snprintf(open_msg, sizeof open_msg, "%s", rf_errmsg());
	struct rf_trace_stats st;
	rf_trace_stats(&st);
	struct stat sb;
	CHECK(fstat(fd, &sb) == 0);

	CHECK(dup2(saved, 2) == 2);
	CHECK_EQ(sb.st_size, 0); /* nothing printed */
	CHECK(rate == 1.0);
	CHECK(strstr(rate_msg, "RINGFLOW_TRACE_SAMPLE_RATE=\"2\" ignored"));
	CHECK_EQ(st.config_ignored, 1);
	CHECK(!a_rec);
	CHECK_EQ(st.errors, 2); /* both roots */
	CHECK_EQ(st.traces, 0);
	CHECK(strstr(open_msg, "tracing: no producer: ") && strstr(open_msg, "too long"));
	return 0;
}

static void test_silent(void)
{
	CHECK_EQ(in_child(silent_child, NULL), 0);
	printf("silent: a bad rate and an unopenable ring are counted and in rf_errmsg(), "
	       "not on stderr\n");
}

/* The first usable of RINGFLOW_TRACE_SAMPLE_RATE, MLFLOW_TRACE_SAMPLING_RATIO
 * (as ringflow.tracing reads them); an unusable one is counted. */
static int rate_child(const void *arg)
{
	(void)arg;
	setenv("RINGFLOW_TRACE_SAMPLE_RATE", "0.5abc", 1);
	setenv("MLFLOW_TRACE_SAMPLING_RATIO", " 0.25 ", 1);
	CHECK(rf_trace_sample_rate() == 0.25);
	CHECK(strstr(rf_errmsg(), "RINGFLOW_TRACE_SAMPLE_RATE=\"0.5abc\" ignored"));
	struct rf_trace_stats st;
	rf_trace_stats(&st);
	CHECK_EQ(st.config_ignored, 1);
	return 0;
}

static void test_rate_fallback(void)
{
	CHECK_EQ(in_child(rate_child, NULL), 0);
	printf("rate: an unusable RINGFLOW_TRACE_SAMPLE_RATE gives way to "
	       "MLFLOW_TRACE_SAMPLING_RATIO, counted\n");
}

int main(void)
{
	test_words();
	test_switches();
	test_silent();
	test_rate_fallback();
	return RF_T_PASS;
}
