/*
 * rf_version.h - the ringflow release for the C side.
 *
 * The one copy is the top-level VERSION file: the Makefile, tests/fuzz/fuzz.mk
 * and the pip build (producer/python/setup.py) pass it as -DRF_VERSION, and
 * the Python package takes its version from the same file.  The hook compares
 * it with `ringflowd --version` of a sidecar already running, so an upgrade
 * that leaves an old sidecar serving the ring gets a clear message.
 */
#ifndef RF_VERSION_H
#define RF_VERSION_H

#ifndef RF_VERSION
#error "RF_VERSION is not defined: build with the Makefile or pip (they pass -DRF_VERSION from VERSION)"
#endif

#endif
