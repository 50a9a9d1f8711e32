# mdoctor -- one hand-written Makefile.
#   make            build the core library (and, later, the shell)
#   make test       build and run every test; ends with "N passed, N failed"
#   make check-asan the same under AddressSanitizer + UBSan
#   make bench      kernel microbenchmarks (GFLOP/s next to BLIS sgemm)
#   make deps       install the Debian packages we build with (root)

CC      ?= gcc
MARCH   ?= -march=native
OPT     ?= -O2
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wno-unused-parameter
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(MARCH) -fopenmp -g $(WARN) -Icore
LDLIBS  += -lblis -lm -fopenmp
BUILD   ?= build

CORE_SRC  := $(wildcard core/*.c)
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(wildcard tests/c/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/c/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test check-asan bench deps clean depend run

all: $(BUILD)/libmdcore.a

$(BUILD)/%.o: %.c core/md.h core/internal.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libmdcore.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/%: tests/c/%.c tests/c/check.h $(BUILD)/libmdcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/c $< -o $@ $(BUILD)/libmdcore.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmdcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libmdcore.a $(LDLIBS)

deps:
	sh scripts/install-deps.sh

test: deps $(TEST_BIN)
	sh tests/run.sh $(BUILD)

# the sanitizer build lives in its own tree so the two never mix objects
check-asan: deps
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDLIBS="-lblis -lm -fopenmp -fsanitize=address,undefined" build-asan/libmdcore.a \
	  $(TEST_BIN:$(BUILD)/%=build-asan/%)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh build-asan

bench: deps $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

depend:
	$(CC) -MM -Icore $(CORE_SRC)

clean:
	rm -rf build build-asan
