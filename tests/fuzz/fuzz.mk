# tests/fuzz/fuzz.mk - the libFuzzer targets (make fuzz / make fuzz-build).
#
# clang, -fsanitize=fuzzer,address,undefined; every finding aborts.  The
# targets link the real ring, producer and sidecar code, with rf_http.c and
# rf_loop.c replaced by tests/fuzz/fuzz_http.c (the fuzzer plays the MLflow
# server; no sockets, no io_uring); rf_prom.c (the /metrics server) and the
# daemon itself (sidecar/daemon/rf_daemon*.c, which runs the real loop) left out.
FCC     ?= clang
SIDE_DIRS := io ingest track trace ops daemon
FB      := build/fuzz
FFLAGS  := -std=c17 -D_GNU_SOURCE -g -O1 -pthread -fno-omit-frame-pointer \
           -Iringbuf -Iproducer $(SIDE_DIRS:%=-Isidecar/%) -Itests/fuzz \
           -DRF_VERSION='"$(shell cat VERSION)"' -MMD -MP \
           -Wall -Wextra -Werror -Wno-missing-field-initializers \
           -fsanitize=address,undefined -fno-sanitize-recover=all
FSRCS   := $(wildcard ringbuf/*.c) $(wildcard producer/*.c) \
           $(filter-out sidecar/io/rf_http.c sidecar/io/rf_loop.c sidecar/ops/rf_prom.c \
                         sidecar/daemon/rf_daemon%,\
             $(foreach d,$(SIDE_DIRS),$(wildcard sidecar/$(d)/*.c))) \
           tests/fuzz/fuzz_http.c tests/fuzz/fuzz_track.c
FOBJS   := $(FSRCS:%.c=$(FB)/obj/%.o)
FTARGETS := record journal spill mlflow_resp ring evallog
FLIBS   := -ljansson -lcurl -larchive -lmsgpackc -lz -lm -lpthread

all: $(FTARGETS:%=$(FB)/%)

$(FB)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FCC) $(FFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FB)/%: tests/fuzz/%.c $(FOBJS)
	@mkdir -p $(@D)
	$(FCC) $(FFLAGS) -fsanitize=fuzzer $< $(FOBJS) -o $@ $(FLIBS)

-include $(shell find $(FB) -name '*.d' 2>/dev/null)
