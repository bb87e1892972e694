/*
 * rf_version.h - the ringflow release, one place for the C side.
 *
 * Must equal the Python package's version (producer/python/pyproject.toml,
 * checked by tests/python/test_user_path.py): the hook compares it with
 * `ringflowd --version` of a sidecar already running, so an upgrade that
 * leaves an old sidecar serving the ring gets a clear message.
 */
#ifndef RF_VERSION_H
#define RF_VERSION_H

#define RF_VERSION "0.1.0"

#endif
