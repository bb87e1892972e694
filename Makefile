# ringflow - top-level build.  Plain make (liburing/Redis style).
#
#   make            build the library, daemon and tests (release, gcc)
#   make test       install what is missing, build every variant, run every test
#   make demo       run the main job end to end
#   make bench-ring ring benchmark (JSON lines), rewrites bench/RESULTS.md section
#
# Variants: VARIANT=release (default) | asan (ASan+UBSan) | tsan.  Each builds
# into build/$(VARIANT)/ so they never mix objects.

ifeq ($(origin CC),default)
  CC := gcc
endif
VARIANT ?= release
PREFIX  ?= /usr/local
B       := build/$(VARIANT)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-missing-field-initializers
BASE    := -std=c17 -D_GNU_SOURCE -g -pthread -fPIC -Iringbuf -Itests

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
LDLIBS     += -lz -lpthread

RING_SRCS  := $(wildcard ringbuf/*.c)
RING_OBJS  := $(RING_SRCS:%.c=$(B)/%.o)
RING_LIB   := $(B)/libringbuf.a

TEST_SRCS  := $(wildcard tests/test_*.c)
TEST_BINS  := $(TEST_SRCS:tests/%.c=$(B)/tests/%)

EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLE_BINS := $(EXAMPLE_SRCS:examples/%.c=$(B)/examples/%)

BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(B)/bench/%)

.PHONY: all test test-c demo bench bench-ring deps venv clean install check-clang
all: $(RING_LIB) $(TEST_BINS) $(BENCH_BINS) $(EXAMPLE_BINS)

$(B)/%.o: %.c $(wildcard ringbuf/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(RING_LIB): $(RING_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/tests/%: tests/%.c $(RING_LIB) tests/rf_test.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(RING_LIB) $(LDLIBS)

$(B)/examples/%: examples/%.c $(RING_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(RING_LIB) $(LDLIBS)

$(B)/bench/%: bench/%.c $(RING_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(RING_LIB) $(LDLIBS) -lm

# ---- the promises of README.md ----

deps:
	./scripts/install-deps.sh

venv: deps
	./scripts/venv.sh

test: deps venv
	./tests/run_all.sh

# One variant's C tests (used by tests/run_all.sh).  TESTS narrows the set.
test-c: all
	./tests/run.sh $(B)/tests $(TESTS)

demo: deps
	$(MAKE) VARIANT=release all
	./scripts/demo.sh

bench-ring: deps
	$(MAKE) VARIANT=release CFLAGS=-DNDEBUG all
	./bench/run_ring.sh

bench: bench-ring

install: $(RING_LIB)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib
	install -m 644 ringbuf/rf_ring.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(RING_LIB) $(DESTDIR)$(PREFIX)/lib/

clean:
	rm -rf build
