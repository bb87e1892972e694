/*
 * rf_env.h - ringflow's one rule for its on/off environment variables
 * (RINGFLOW_DISABLED, RINGFLOW_TRACE_DISABLED, RINGFLOW_RING_GROUP, ...),
 * shared by every C part; the Python package applies the same rule
 * (ringflow/_env.py), and README.md's Configuration table states it:
 *
 *	unset, empty or only blanks       the variable's default
 *	1, true, yes, on  (any case)      on
 *	0, false, no, off (any case)      off
 *	anything else                     on
 *
 * (blanks around the word are ignored: space, \t, \n, \r, \v, \f).
 *
 * "Anything else is on" because setting a switch is asking for it:
 * RINGFLOW_DISABLED=y disables, as it did before the words were listed.
 * Only the off words turn a switch off, so RINGFLOW_DISABLED=0 leaves
 * ringflow on.  Variables that ringflow shares with MLflow or inspect-mlflow
 * (MLFLOW_INSPECT_TRACING, INSPECT_MLFLOW_LOG_ARTIFACTS, ...) keep their
 * owners' rules instead.
 */
#ifndef RF_ENV_H
#define RF_ENV_H

#include <stdbool.h>

/* The value's meaning: 1 for an on word, 0 for an off word, -1 for NULL or
 * blank, 2 for anything else (which rf_env_flag takes as on). */
int rf_flag_word(const char *value);

/* $name under the rule above; `dflt` when unset or blank. */
bool rf_env_flag(const char *name, bool dflt);

#endif
