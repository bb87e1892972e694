/*
 * rf_env.c - see rf_env.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rf_env.h"

#define BLANKS " \t\n\r\v\f" /* as _env.py strips them */

static bool word_is(const char *v, size_t n, const char *w)
{
	return strlen(w) == n && !strncasecmp(v, w, n);
}

int rf_flag_word(const char *value)
{
	if (!value)
		return -1;
	value += strspn(value, BLANKS);
	size_t n = strlen(value);
	while (n && strchr(BLANKS, value[n - 1]))
		n--;
	if (!n)
		return -1;
	static const char *const on[] = {"1", "true", "yes", "on"};
	static const char *const off[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < sizeof on / sizeof *on; i++) {
		if (word_is(value, n, on[i]))
			return 1;
		if (word_is(value, n, off[i]))
			return 0;
	}
	return 2;
}

bool rf_env_flag(const char *name, bool dflt)
{
	int w = rf_flag_word(getenv(name));
	return w < 0 ? dflt : w != 0;
}
