/*
 * test_blob.c - request bodies kept in unnamed files (rf_blob) and sent
 * from them (rf_http_request_blob): written once, read back whole for
 * every attempt of a retried PUT, patched in place; a full disk is an
 * error, never a short body.  Also the streamed secret check
 * (rf_redact_scan) that the Inspect log's copy goes through.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "rf_blob.h"
#include "rf_http.h"
#include "rf_loop.h"
#include "rf_redact.h"
#include "rf_test.h"

static size_t entries(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, ".."));
	if (d)
		closedir(d);
	return n;
}

static struct rf_blob *pattern(const char *dir, size_t n)
{
	struct rf_blob *b = rf_blob_new(dir);
	CHECK(b);
	FILE *f = rf_blob_writer(b);
	for (size_t i = 0; i < n; i++)
		fputc('a' + (int)(i % 23), f);
	CHECK_EQ(rf_blob_seal(b), 0);
	CHECK(rf_blob_writer(b) == NULL);
	return b;
}

static void check_pattern(struct rf_blob *b, size_t n)
{
	CHECK_EQ(rf_blob_len(b), n);
	char buf[4096];
	for (uint64_t off = 0; off < n; off += sizeof buf - 7) {
		ssize_t r = rf_blob_read(b, off, buf, sizeof buf);
		CHECK(r > 0);
		for (ssize_t i = 0; i < r; i++)
			CHECK_EQ(buf[i], 'a' + (int)((off + (uint64_t)i) % 23));
	}
	CHECK_EQ(rf_blob_read(b, n, buf, sizeof buf), 0);
}

static void files_and_memory(const char *dir)
{
	struct rf_blob *b = pattern(dir, 3u << 20);
	CHECK(rf_blob_in_file(b));
	CHECK_EQ(entries(dir), 0); /* unnamed: nothing another process could open */
	check_pattern(b, 3u << 20);
	CHECK_EQ(rf_blob_patch(b, 10, "0123", 4), 0);
	char buf[8];
	CHECK_EQ(rf_blob_read(b, 8, buf, 8), 8);
	CHECK(!memcmp(buf + 2, "0123", 4));
	CHECK(rf_blob_patch(b, (3u << 20) - 2, "0123", 4) < 0); /* past the end */
	rf_blob_free(b);

	b = pattern(NULL, 100000); /* no directory: memory */
	CHECK(!rf_blob_in_file(b));
	check_pattern(b, 100000);
	rf_blob_free(b);
	rf_blob_free(rf_blob_new(dir)); /* never sealed: freed all the same */
}

/* A write the disk refuses makes the seal fail: a body is whole or an error. */
static void full_disk(const char *dir)
{
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit old, lim = {64 << 10, 64 << 10};
	CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim.rlim_max = old.rlim_max;
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct rf_blob *b = rf_blob_new(dir);
	CHECK(b && rf_blob_in_file(b));
	FILE *f = rf_blob_writer(b);
	for (int i = 0; i < (1 << 20); i++)
		fputc('x', f);
	CHECK(rf_blob_seal(b) < 0);
	CHECK_EQ(rf_blob_len(b), 0);
	rf_blob_free(b);
	CHECK_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
}

static void secret_scan(void)
{
	setenv("RF_TEST_API_KEY", "s3cr3t-value-xyz", 1);
	rf_redact_init();
	const char *text = "before s3cr3t-value-xyz after";
	for (size_t cut = 0; cut <= strlen(text); cut++) { /* split anywhere */
		struct rf_redact_scan s = {0};
		rf_redact_scan(&s, text, cut);
		rf_redact_scan(&s, text + cut, strlen(text) - cut);
		CHECK(s.found);
		rf_redact_scan_end(&s);
	}
	struct rf_redact_scan s = {0}; /* a byte at a time */
	for (const char *p = text; *p; p++)
		rf_redact_scan(&s, p, 1);
	CHECK(s.found);
	rf_redact_scan_end(&s);
	struct rf_redact_scan clean = {0};
	const char *other = "s3cr3t-value-xy and z";
	for (const char *p = other; *p; p++)
		rf_redact_scan(&clean, p, 1);
	CHECK(!clean.found);
	rf_redact_scan_end(&clean);
}

/* ---- a PUT from a blob, answered 503 once, then 200 ---- */

struct server {
	int lfd, port;
	size_t want;
	unsigned char *got; /* the body of the second request */
	size_t got_len;
	int requests;
};

static size_t read_request(int c, unsigned char **body)
{
	char head[8192];
	size_t h = 0;
	while (h < sizeof head - 1) {
		ssize_t r = read(c, head + h, 1);
		if (r <= 0)
			return 0;
		h++;
		if (h >= 4 && !memcmp(head + h - 4, "\r\n\r\n", 4))
			break;
	}
	head[h] = 0;
	const char *cl = strcasestr(head, "Content-Length:");
	size_t n = cl ? strtoul(cl + 15, NULL, 10) : 0;
	*body = malloc(n + 1);
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(c, *body + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

static void *serve(void *arg)
{
	struct server *s = arg;
	for (int i = 0; i < 2; i++) {
		int c = accept(s->lfd, NULL, NULL);
		if (c < 0)
			return NULL;
		unsigned char *body = NULL;
		size_t n = read_request(c, &body);
		s->requests++;
		const char *ans = i == 0 ? "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
					   "Connection: close\r\n\r\n"
					 : "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
					   "Content-Length: 2\r\nConnection: close\r\n\r\n{}";
		if (i == 1) {
			s->got = body;
			s->got_len = n;
		} else {
			free(body);
		}
		CHECK(write(c, ans, strlen(ans)) == (ssize_t)strlen(ans));
		close(c);
	}
	return NULL;
}

static long final_status = -1;
static void on_done(long status, const char *body, size_t len, const char *err, void *arg)
{
	(void)body, (void)len, (void)err, (void)arg;
	final_status = status;
}

static void put_with_retry(const char *dir)
{
	struct server s = {.want = 2u << 20};
	s.lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	CHECK_EQ(bind(s.lfd, (struct sockaddr *)&a, sizeof a), 0);
	CHECK_EQ(listen(s.lfd, 4), 0);
	CHECK_EQ(getsockname(s.lfd, (struct sockaddr *)&a, &al), 0);
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, serve, &s), 0);

	rf_loop *l;
	rf_http *h;
	CHECK_EQ(rf_loop_new(&l), 0);
	struct rf_http_opts o = {.timeout_ms = 10000, .backoff_max_ms = 50};
	CHECK_EQ(rf_http_new(&h, l, &o), 0);
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
	CHECK_EQ(rf_http_request_blob(h, "PUT", url, pattern(dir, s.want), "application/json", NULL,
				      false, RF_HTTP_RETRY_ALL, on_done, NULL),
		 0);
	for (int i = 0; i < 2000 && final_status < 0; i++)
		rf_loop_run_once(l, 10);
	CHECK_EQ(final_status, 200);
	CHECK_EQ(s.requests, 2);
	CHECK_EQ(s.got_len, s.want); /* the retry sent the body whole, from its start */
	for (size_t i = 0; i < s.got_len; i++)
		CHECK_EQ(s.got[i], 'a' + (int)(i % 23));
	pthread_join(th, NULL);
	free(s.got);
	close(s.lfd);
	rf_http_free(h);
	rf_loop_free(l);
}

int main(void)
{
	char dir[] = "/tmp/rf-test-blob-XXXXXX";
	CHECK(mkdtemp(dir));
	files_and_memory(dir);
	secret_scan();
	put_with_retry(dir);
	full_disk(dir);
	CHECK_EQ(entries(dir), 0);
	rmdir(dir);
	return RF_T_PASS;
}
