# ringflow - top-level build.  Plain make (liburing/Redis style).
#
#   make            build libraries, tools, tests (release, gcc)
#   make test       install what is missing, build every variant, run every test
#   make demo       run the main job end to end
#   make fuzz       libFuzzer targets, 10 M executions each (tests/fuzz/)
#   make bench-ring ring benchmark (JSON lines), rewrites bench/RESULTS.md section
#   make bench-trace tracing API cost (C, Python, MLflow's own), ditto
#   make bench      every benchmark (ring, hook, sidecar, trace, e2e), JSON lines
#   make load       the load test at full size (32 M records into MLflow on PostgreSQL)
#   make install PREFIX=...  libringflow (static + shared), headers, pkg-config,
#                            ringflowd, ringflow-dump, the systemd user unit
#
# Variants: VARIANT=release (default) | asan (ASan+UBSan) | tsan.  Each builds
# into build/$(VARIANT)/ so they never mix objects.

ifeq ($(origin CC),default)
  CC := gcc
endif
VARIANT ?= release
PREFIX  ?= /usr/local
B       := build/$(VARIANT)
VERSION := $(shell cat VERSION)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-missing-field-initializers
BASE    := -std=c17 -D_GNU_SOURCE -g -pthread -fPIC -MMD -MP -DRF_VERSION='"$(VERSION)"'

# Include paths by layer: a directory sees its own headers and those of the
# layers below it, never above (ringbuf < producer < sidecar/io < ingest <
# track < trace; ingest < ops; all of them < daemon < programs, tests, benches).
SIDE_DIRS   := io ingest track trace ops daemon
INC_ringbuf := -Iringbuf
INC_producer:= $(INC_ringbuf) -Iproducer
INC_io      := $(INC_producer) -Isidecar/io
INC_ingest  := $(INC_io) -Isidecar/ingest
INC_track   := $(INC_ingest) -Isidecar/track
INC_trace   := $(INC_track) -Isidecar/trace
INC_ops     := $(INC_ingest) -Isidecar/ops
INC_daemon  := $(INC_ingest) $(SIDE_DIRS:%=-Isidecar/%)
INC_ALL     := $(INC_daemon) -Itests

ifeq ($(VARIANT),release)
  VFLAGS := -O2
else ifeq ($(VARIANT),asan)
  VFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(VARIANT),tsan)
  VFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=thread
else
  $(error unknown VARIANT $(VARIANT))
endif

ALL_CFLAGS := $(BASE) $(WARN) $(VFLAGS) $(CFLAGS)
LIB_LIBS   := -lmsgpackc -lz -lpthread
SIDE_LIBS  := -ljansson -luring -lcurl -larchive -lmicrohttpd -lm

# libringflow: the ring + the producer library (what applications link)
LIB_SRCS   := $(wildcard ringbuf/*.c) $(wildcard producer/*.c)
LIB_OBJS   := $(LIB_SRCS:%.c=$(B)/%.o)
LIB        := $(B)/libringflow.a
SOLIB      := $(B)/libringflow.so

# sidecar modules, by stage (the programs are in sidecar/bin/)
SIDE_SRCS  := $(foreach d,$(SIDE_DIRS),$(wildcard sidecar/$(d)/*.c))
SIDE_OBJS  := $(SIDE_SRCS:%.c=$(B)/%.o)
SIDE_LIB   := $(B)/libsidecar.a
PROG_SRCS  := $(wildcard sidecar/bin/*.c)
PROG_BINS  := $(patsubst sidecar/bin/%.c,$(B)/bin/%,$(subst _,-,$(PROG_SRCS)))

TEST_BINS  := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))
EXAMPLE_BINS := $(patsubst examples/%.c,$(B)/examples/%,$(wildcard examples/*.c))
# bench/ring_bench_*.c are parts of ring_bench (one program over several files)
RING_BENCH_PARTS := $(wildcard bench/ring_bench_*.c)
BENCH_BINS := $(patsubst bench/%.c,$(B)/bench/%,$(filter-out $(RING_BENCH_PARTS),$(wildcard bench/*.c)))

LINK_ALL   := $(SIDE_LIB) $(LIB) $(SIDE_LIBS) $(LIB_LIBS)

.PHONY: all test test-c demo bench bench-ring bench-hook bench-sidecar bench-trace bench-e2e load deps venv pip clean install fuzz fuzz-build
all: $(LIB) $(SOLIB) $(SIDE_LIB) $(PROG_BINS) $(TEST_BINS) $(BENCH_BINS) $(EXAMPLE_BINS)

$(B)/ringbuf/%.o:  INC := $(INC_ringbuf)
$(B)/producer/%.o: INC := $(INC_producer)
$(foreach d,$(SIDE_DIRS),$(eval $(B)/sidecar/$(d)/%.o: INC := $(INC_$(d))))

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC) -c $< -o $@

$(LIB): $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(SOLIB): $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) -shared -Wl,-soname,libringflow.so.0 -o $@ $^ $(LIB_LIBS)

$(SIDE_LIB): $(SIDE_OBJS)
	rm -f $@ && ar rcs $@ $^

# sidecar/bin/ringflow_dump.c -> bin/ringflow-dump
.SECONDEXPANSION:
$(B)/bin/%: sidecar/bin/$$(subst -,_,$$*).c $(SIDE_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_ALL) $< -o $@ $(LINK_ALL)

$(B)/tests/%: tests/%.c $(SIDE_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_ALL) $< -o $@ $(LINK_ALL)

$(B)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_producer) $< -o $@ $(LIB) $(LIB_LIBS)

$(B)/bench/%: bench/%.c $(SIDE_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_ALL) $< -o $@ $(LINK_ALL) -lm

$(B)/bench/ring_bench: bench/ring_bench.c $(RING_BENCH_PARTS) $(SIDE_LIB) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(INC_ALL) $(filter %.c,$^) -o $@ $(LINK_ALL) -lm

# Header dependencies, written by the compiler (-MMD -MP) beside each output.
-include $(shell find $(B) -name '*.d' 2>/dev/null)

# ---- the promises of README.md ----

deps:
	./scripts/install-deps.sh

venv: deps
	./scripts/venv.sh

# The pip package (CPython extension over the same C sources), into .venv.
pip: venv
	./scripts/pip-install.sh

test: deps venv pip
	./tests/run_all.sh

# One variant's C tests (used by tests/run_all.sh).  TESTS narrows the set.
test-c: all
	./tests/run.sh $(B)/tests $(TESTS)

demo: deps venv pip
	$(MAKE) VARIANT=release all
	./scripts/demo.sh

bench-ring: deps
	$(MAKE) VARIANT=release CFLAGS=-DNDEBUG all
	./bench/run_ring.sh

bench-hook: deps venv
	$(MAKE) VARIANT=release all
	./scripts/pip-install.sh
	./bench/run_hook.sh

bench-sidecar: deps venv
	$(MAKE) VARIANT=release all
	./scripts/pip-install.sh
	./bench/run_sidecar.sh

# Tracing API cost in the caller: C, Python, and MLflow's own tracing.
bench-trace: deps venv
	$(MAKE) VARIANT=release all
	./scripts/pip-install.sh
	./bench/run_trace.sh

# no hook / ringflow / inspect-mlflow 0.9.0 on the same eval, 100-10,000 samples
# (BENCH_SIZES, BENCH_DEADLINE: bench/run_e2e.sh); ~1.5 h with all sizes
bench-e2e: deps venv
	$(MAKE) VARIANT=release all
	./scripts/pip-install.sh
	./bench/run_e2e.sh

bench: bench-ring bench-hook bench-sidecar bench-trace bench-e2e

# libFuzzer targets (tests/fuzz/, clang, ASan+UBSan), not part of `make test`
# (which only replays their kept corpora): each runs FUZZ_RUNS (10 M) times,
# one JSON line per target; FUZZ_UPDATE=1 keeps the minimized corpus.
fuzz-build:
	$(MAKE) -f tests/fuzz/fuzz.mk all

fuzz:
	./tests/fuzz/run.sh $(FUZZ_TARGETS)

# The load test at full size: 8 processes x 4 threads x 1 M records (32 M)
# through ring and ringflowd into MLflow on PostgreSQL.  `make test` runs it
# at 25 k records per thread (800 k).  Figures: build/logs/load-*.json.
load: deps venv pip
	$(MAKE) VARIANT=release all
	RF_LOAD_RECORDS=$${RF_LOAD_RECORDS:-1000000} .venv/bin/python -m pytest -q -s tests/python/test_load.py

install: $(LIB) $(SOLIB) $(PROG_BINS)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 producer/ringflow.h producer/ringflow_trace.h ringbuf/rf_ring.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SOLIB) $(DESTDIR)$(PREFIX)/lib/libringflow.so.$(VERSION)
	ln -sf libringflow.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libringflow.so.0
	ln -sf libringflow.so.0 $(DESTDIR)$(PREFIX)/lib/libringflow.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' producer/ringflow.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/ringflow.pc
	install -m 755 $(PROG_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/user
	sed -e 's|@PREFIX@|$(PREFIX)|' sidecar/ringflowd.service.in \
		> $(DESTDIR)$(PREFIX)/lib/systemd/user/ringflowd.service

clean:
	rm -rf build
