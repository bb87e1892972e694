/*
 * test_dest - the URI rules destinations rest on (sidecar/daemon/rf_dest.c): what
 * is one destination, what is the sidecar's own origin (which alone gets its
 * credentials), and that userinfo never stays in a URI that is kept.
 */
#include "rf_dest.h"
#include "rf_test.h"

static void norm(const char *in, const char *want)
{
	char out[512], u[64], p[64];
	CHECK_EQ(rf_dest_uri_normalize(in, out, sizeof out, u, sizeof u, p, sizeof p), 0);
	if (strcmp(out, want)) {
		fprintf(stderr, "normalize(%s) = %s, want %s\n", in, out, want);
		exit(RF_T_FAIL);
	}
}

int main(void)
{
	char out[512], u[64], p[64];
	norm("http://127.0.0.1:5000/", "http://127.0.0.1:5000");
	norm("http://127.0.0.1:5000", "http://127.0.0.1:5000");
	norm("https://mlflow.example/base/", "https://mlflow.example/base");
	norm("HTTP://h:5000", "http://h:5000");
	/* Userinfo is returned to the caller (decoded), never kept. */
	CHECK_EQ(rf_dest_uri_normalize("http://me:p%40ss@h:5000/x", out, sizeof out, u, sizeof u, p,
				       sizeof p), 0);
	CHECK(!strcmp(out, "http://h:5000/x") && !strcmp(u, "me") && !strcmp(p, "p@ss"));
	CHECK(!strstr(out, "p@ss") && !strstr(out, "me@"));
	/* What ringflowd cannot serve is refused, not guessed at. */
	const char *bad[] = {"file:///tmp/mlruns", "sqlite:///x.db", "databricks", "/a/path",
			     "htp://h", "", "http://", NULL};
	for (int i = 0; bad[i]; i++)
		CHECK(rf_dest_uri_normalize(bad[i], out, sizeof out, NULL, 0, NULL, 0) == -EINVAL);
	CHECK(rf_dest_uri_normalize(NULL, out, sizeof out, NULL, 0, NULL, 0) == -EINVAL);
	char longer[700];
	memset(longer, 'a', sizeof longer - 1);
	longer[sizeof longer - 1] = 0;
	memcpy(longer, "http://", 7);
	CHECK(rf_dest_uri_normalize(longer, out, sizeof out, NULL, 0, NULL, 0) == -EINVAL);

	/* Same origin: scheme, host (any case), port (defaults filled in). */
	CHECK(rf_dest_same_origin("http://h:5000", "http://h:5000/other/path"));
	CHECK(rf_dest_same_origin("http://H", "http://h:80"));
	CHECK(rf_dest_same_origin("https://h/", "https://h:443/x"));
	CHECK(rf_dest_same_origin("http://u:p@h:5000", "http://h:5000"));
	CHECK(!rf_dest_same_origin("http://h:5000", "http://h:5001"));
	CHECK(!rf_dest_same_origin("http://h", "https://h"));
	CHECK(!rf_dest_same_origin("http://h.evil", "http://h"));
	CHECK(!rf_dest_same_origin("http://h@evil:5000", "http://h:5000"));
	CHECK(!rf_dest_same_origin("file:///x", "file:///x"));
	CHECK(!rf_dest_same_origin(NULL, "http://h"));
	return RF_T_PASS;
}
