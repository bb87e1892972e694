/*
 * ring_bench.c - throughput and producer-side cost of the ringflow ring,
 * against a UNIX datagram socket baseline, with the same records.
 *
 * One run of a configuration:
 *
 *   coordinator (this process, single-threaded)
 *     +-- consumer process   ring: rf_ring_open(CREATE|CONSUMER), drains with
 *     |                            rf_ring_consume / rf_ring_wait
 *     |                      unix_dgram: recvmmsg on the read end of a
 *     |                            socketpair(AF_UNIX, SOCK_DGRAM)
 *     +-- P producer processes (fork), each opening the ring itself after the
 *           fork (flags 0, RF_RING_FULL_WAIT) and running T threads; every
 *           thread writes records of `bytes` payload bytes:
 *             ring:       rf_ring_claim -> fill in place -> rf_ring_commit
 *             unix_dgram: fill a private buffer -> send() (blocking, no loss)
 *
 * Record payload: {u32 thread id, u32 length, u64 sequence} then the rest of
 * the payload memset to (uint8_t)sequence.  The consumer checks the length,
 * the per-thread sequence (each thread's records must arrive in order, none
 * missing or duplicated) and the last fill byte, and counts every record.
 *
 * Throughput: records consumed / (time the consumer has received every record
 * committed - time the coordinator released the start barrier).  Producers run
 * for --seconds (default) or write a fixed --records each.
 *
 * Producer cost: the claim+fill+commit (or fill+send) of 1 record in every
 * --sample-every (default 8) is timed, with rdtsc (lfence-serialised, calibrated
 * against CLOCK_MONOTONIC) on x86-64, else clock_gettime(CLOCK_MONOTONIC).
 * Samples go to a per-thread log-linear histogram (<= 1.6 % bucket error); the
 * cost of one timer read (back to back) is reported as timer_overhead_ns and is
 * NOT subtracted.  Timing is sampled so that the timer does not slow the
 * throughput measurement.
 *
 * Output: one JSON object per line per configuration on stdout; progress and
 * errors on stderr.  Exit status 0 if every run completed without loss or
 * corruption.
 *
 * The program is split over bench/ring_bench*.c along its seams (see
 * ring_bench.h); this file is the command line.
 */
#include "ring_bench.h"

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ring_bench [options]\n"
		"\n"
		"Benchmarks the ringflow MPSC shared-memory ring against a UNIX datagram\n"
		"socket (socketpair(AF_UNIX, SOCK_DGRAM), blocking sends) with the same\n"
		"records: P producer processes (fork) x T threads each, one consumer\n"
		"process.  Prints one JSON object per configuration on stdout.\n"
		"\n"
		"  --transport LIST   ring, unix_dgram or both (default both)\n"
		"  --config LIST      producers:threads pairs (default 1:1,2:1,4:1,4:4)\n"
		"  --producers LIST   producer processes; with --threads, replaces --config\n"
		"                     by the cross product (e.g. --producers 1,2 --threads 1)\n"
		"  --threads LIST     threads per producer process\n"
		"  --bytes LIST       payload bytes per record, >= %u (default 64,128,1024,4096)\n"
		"  --seconds S        run each configuration for S seconds (default 1.5)\n"
		"  --records N        instead, each thread writes exactly N records\n"
		"  --capacity BYTES   ring data area, power of two (default %u = 16 MiB)\n"
		"  --full-wait-ns NS  RF_RING_FULL_WAIT bound on waiting for room\n"
		"                     (default 10000000000 = 10 s)\n"
		"  --sample-every N   time 1 record in N, power of two (default 8)\n"
		"  --timer tsc|clock  rdtsc (x86-64 default) or clock_gettime(CLOCK_MONOTONIC)\n"
		"  --batch N          rf_ring_consume max records per call (default 4096)\n"
		"  --sockbuf BYTES    SO_SNDBUF/SO_RCVBUF for unix_dgram (default 8 MiB)\n"
		"  --repeat N         run each configuration N times (1..%d, default 1) and\n"
		"                     report the run with the median records/s; loss and\n"
		"                     errors are summed over all N runs\n"
		"  --timeout S        seconds beyond the run before it is declared hung (30)\n"
		"  -h, --help         this text\n"
		"\n"
		"LIST is comma-separated.  Exit status: 0 if every run received every\n"
		"record intact, 1 otherwise, 2 on bad usage.\n",
		HDR_BYTES, RF_RING_DEFAULT_CAPACITY, MAX_REPEAT);
}

static unsigned parse_list(const char *s, const char *what, unsigned long long *out)
{
	unsigned n = 0;
	const char *p = s;
	while (*p) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 0);
		if (end == p || errno || (*end && *end != ',') || n == MAX_LIST) {
			fprintf(stderr, "ring_bench: bad %s list '%s'\n", what, s);
			exit(2);
		}
		out[n++] = v;
		p = *end ? end + 1 : end;
	}
	if (n == 0) {
		fprintf(stderr, "ring_bench: empty %s list\n", what);
		exit(2);
	}
	return n;
}

static double parse_double(const char *s, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno || !(v > 0)) {
		fprintf(stderr, "ring_bench: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static unsigned long long parse_u64(const char *s, const char *what)
{
	unsigned long long v[MAX_LIST];
	if (parse_list(s, what, v) != 1) {
		fprintf(stderr, "ring_bench: %s takes one value\n", what);
		exit(2);
	}
	return v[0];
}

int main(int argc, char **argv)
{
	struct opts o = {
		.transports = (1u << T_RING) | (1u << T_DGRAM),
		.seconds = 1.5,
		.capacity = RF_RING_DEFAULT_CAPACITY,
		.full_wait_ns = 10ull * 1000 * 1000 * 1000,
		.sample_every = 8,
		.batch = 4096,
		.repeat = 1,
		.sockbuf = 8 << 20,
		.timeout = 30,
#if defined(__x86_64__)
		.use_tsc = true,
#endif
	};
	unsigned long long prod[MAX_LIST], thr[MAX_LIST], tmp[MAX_LIST];
	unsigned n_prod = 0, n_thr = 0;
	static const unsigned def_pt[][2] = { { 1, 1 }, { 2, 1 }, { 4, 1 }, { 4, 4 } };
	static const size_t def_bytes[] = { 64, 128, 1024, 4096 };

	o.n_pt = 4;
	memcpy(o.pt, def_pt, sizeof def_pt);
	o.n_bytes = 4;
	memcpy(o.bytes, def_bytes, sizeof def_bytes);

	enum { O_TRANSPORT = 256, O_CONFIG, O_PRODUCERS, O_THREADS, O_BYTES, O_SECONDS,
	       O_RECORDS, O_CAPACITY, O_FULLWAIT, O_SAMPLE, O_TIMER, O_BATCH, O_SOCKBUF,
	       O_TIMEOUT, O_REPEAT };
	static const struct option lo[] = {
		{ "transport", required_argument, NULL, O_TRANSPORT },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "producers", required_argument, NULL, O_PRODUCERS },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "bytes", required_argument, NULL, O_BYTES },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "records", required_argument, NULL, O_RECORDS },
		{ "capacity", required_argument, NULL, O_CAPACITY },
		{ "full-wait-ns", required_argument, NULL, O_FULLWAIT },
		{ "sample-every", required_argument, NULL, O_SAMPLE },
		{ "timer", required_argument, NULL, O_TIMER },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "sockbuf", required_argument, NULL, O_SOCKBUF },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "repeat", required_argument, NULL, O_REPEAT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (ch) {
		case O_TRANSPORT:
			if (!strcmp(optarg, "ring"))
				o.transports = 1u << T_RING;
			else if (!strcmp(optarg, "unix_dgram") || !strcmp(optarg, "dgram"))
				o.transports = 1u << T_DGRAM;
			else if (!strcmp(optarg, "both") || !strcmp(optarg, "ring,unix_dgram"))
				o.transports = (1u << T_RING) | (1u << T_DGRAM);
			else {
				fprintf(stderr, "ring_bench: bad --transport '%s'\n", optarg);
				return 2;
			}
			break;
		case O_CONFIG: {
			o.n_pt = 0;
			const char *p = optarg;
			while (*p) {
				char *end;
				unsigned long a = strtoul(p, &end, 10), b;
				if (*end != ':' || o.n_pt == MAX_LIST)
					goto bad_config;
				p = end + 1;
				b = strtoul(p, &end, 10);
				if (end == p || (*end && *end != ','))
					goto bad_config;
				o.pt[o.n_pt][0] = (unsigned)a;
				o.pt[o.n_pt][1] = (unsigned)b;
				o.n_pt++;
				p = *end ? end + 1 : end;
			}
			if (o.n_pt == 0) {
			bad_config:
				fprintf(stderr, "ring_bench: bad --config '%s' (want P:T,...)\n",
					optarg);
				return 2;
			}
			break;
		}
		case O_PRODUCERS:
			n_prod = parse_list(optarg, "--producers", prod);
			break;
		case O_THREADS:
			n_thr = parse_list(optarg, "--threads", thr);
			break;
		case O_BYTES:
			o.n_bytes = parse_list(optarg, "--bytes", tmp);
			for (unsigned i = 0; i < o.n_bytes; i++)
				o.bytes[i] = (size_t)tmp[i];
			break;
		case O_SECONDS:
			o.seconds = parse_double(optarg, "--seconds");
			break;
		case O_RECORDS:
			o.records = parse_u64(optarg, "--records");
			break;
		case O_CAPACITY:
			o.capacity = (size_t)parse_u64(optarg, "--capacity");
			break;
		case O_FULLWAIT:
			o.full_wait_ns = parse_u64(optarg, "--full-wait-ns");
			break;
		case O_SAMPLE:
			o.sample_every = (unsigned)parse_u64(optarg, "--sample-every");
			break;
		case O_TIMER:
			if (!strcmp(optarg, "tsc")) {
#if defined(__x86_64__)
				o.use_tsc = true;
#else
				fprintf(stderr, "ring_bench: --timer tsc needs x86-64\n");
				return 2;
#endif
			} else if (!strcmp(optarg, "clock")) {
				o.use_tsc = false;
			} else {
				fprintf(stderr, "ring_bench: bad --timer '%s'\n", optarg);
				return 2;
			}
			break;
		case O_BATCH:
			o.batch = (unsigned)parse_u64(optarg, "--batch");
			break;
		case O_SOCKBUF:
			o.sockbuf = (int)parse_u64(optarg, "--sockbuf");
			break;
		case O_TIMEOUT:
			o.timeout = parse_double(optarg, "--timeout");
			break;
		case O_REPEAT:
			o.repeat = (unsigned)parse_u64(optarg, "--repeat");
			if (o.repeat < 1 || o.repeat > MAX_REPEAT) {
				fprintf(stderr, "ring_bench: --repeat must be 1..%d\n", MAX_REPEAT);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ring_bench: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (n_prod || n_thr) {
		if (!n_prod) {
			prod[0] = 1;
			n_prod = 1;
		}
		if (!n_thr) {
			thr[0] = 1;
			n_thr = 1;
		}
		o.n_pt = 0;
		for (unsigned i = 0; i < n_prod; i++)
			for (unsigned j = 0; j < n_thr; j++) {
				o.pt[o.n_pt][0] = (unsigned)prod[i];
				o.pt[o.n_pt][1] = (unsigned)thr[j];
				o.n_pt++;
			}
	}
	for (unsigned i = 0; i < o.n_pt; i++) {
		if (o.pt[i][0] == 0 || o.pt[i][1] == 0 ||
		    (unsigned long long)o.pt[i][0] * o.pt[i][1] > MAX_THREADS) {
			fprintf(stderr, "ring_bench: producers x threads must be 1..%d\n",
				MAX_THREADS);
			return 2;
		}
	}
	for (unsigned i = 0; i < o.n_bytes; i++) {
		if (o.bytes[i] < HDR_BYTES || o.bytes[i] > RF_RING_MAX_RECORD(o.capacity)) {
			fprintf(stderr, "ring_bench: --bytes %zu outside %u..%zu\n", o.bytes[i],
				HDR_BYTES, RF_RING_MAX_RECORD(o.capacity));
			return 2;
		}
	}
	if (o.sample_every == 0 || (o.sample_every & (o.sample_every - 1))) {
		fprintf(stderr, "ring_bench: --sample-every must be a power of two\n");
		return 2;
	}
	if (o.batch == 0) {
		fprintf(stderr, "ring_bench: --batch must be > 0\n");
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	g_use_tsc = o.use_tsc;
	timer_calibrate();
	g_timer_overhead_ns = measure_timer_overhead();
	fprintf(stderr, "ring_bench: timer %s, %.4f ns/tick, read overhead %.1f ns, "
			"resolution %.1f ns, sampling 1 in %u\n",
		g_use_tsc ? "rdtsc" : "clock_gettime", g_ns_per_tick, g_timer_overhead_ns,
		g_timer_res_ns, o.sample_every);

	static struct result runs[MAX_REPEAT];
	int rc = 0;
	unsigned seq_no = 0;
	for (unsigned i = 0; i < o.n_pt; i++)
		for (unsigned b = 0; b < o.n_bytes; b++)
			for (unsigned t = 0; t < 2; t++) {
				if (!(o.transports & (1u << t)))
					continue;
				for (unsigned k = 0; k < o.repeat; k++)
					run_config(&o, (enum transport)t, o.pt[i][0], o.pt[i][1],
						   o.bytes[b], seq_no++, &runs[k]);
				rc |= report(&o, (enum transport)t, o.pt[i][0], o.pt[i][1],
					     o.bytes[b], runs, o.repeat);
			}
	return rc;
}
