# mdoctor -- one hand-written Makefile.
#   make            build the core library, the shell and the Lua module
#   make run        the Model Doctor pipeline on Fashion-MNIST (ARGS="--opt v")
#   make test       build and run every test; ends with "N passed, N failed"
#   make check-asan the same under AddressSanitizer + UBSan
#   make bench      kernel microbenchmarks (GFLOP/s next to BLIS sgemm)
#   make bench-models  whole models against PyTorch (THREADS="1 4 16" MODELS=
#                   KINDS= STEPS= WARMUP= ROUNDS=; BENCHMARKS.md)
#   make bench-bundle  that benchmark in one folder for a machine without our
#                   build dependencies ($(BUILD)/bench-bundle, run.sh)
#   make deps       install the Debian packages we build with (root)

CC      ?= gcc
MARCH   ?= -march=native
OPT     ?= -O2
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wno-unused-parameter
SAN     ?=
override CFLAGS += -std=c11 -D_GNU_SOURCE -fPIC $(OPT) $(MARCH) -fopenmp -pthread -g $(WARN) -Icore -Idatasets -I/usr/include/stb $(SAN)
override LDLIBS += -lblis -lmatio -lz -lm -fopenmp -pthread $(SAN)
BUILD   ?= build

# datasets/ readers go into the same library: core stays free of Lua, and
# datasets only use the public core API
CORE_SRC  := $(wildcard core/*.c) $(wildcard datasets/*.c)
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
TEST_SRC  := $(wildcard tests/c/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/c/%.c=$(BUILD)/tests/%)
LUA_CFLAGS := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIBS   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
HDRS      := $(wildcard core/*.h datasets/*.h lua/*.h)
# the Lua module: every lua/l*.c -- lbind.c (helpers), ltensor.c, lops.c,
# lautograd.c, lsys.c, ldata.c, lloader.c, and linit.c that assembles them
# (defined before the rules that depend on it)
LUA_MOD   := $(sort $(wildcard lua/l*.c))
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all test check-asan bench bench-models bench-bundle deps clean depend run FORCE

all: $(BUILD)/libmdcore.a $(BUILD)/mdoctor $(BUILD)/lua/mdoctor/core.so

# the shell: the Lua module linked in, readline for the REPL
$(BUILD)/mdoctor: lua/main.c $(LUA_MOD) $(HDRS) $(BUILD)/libmdcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) lua/main.c $(LUA_MOD) -o $@ $(BUILD)/libmdcore.a $(LUA_LIBS) -lreadline $(LDLIBS)

# the same module for a stock lua5.4: LUA_CPATH="build/lua/?.so;;"
$(BUILD)/lua/mdoctor/core.so: $(LUA_MOD) $(HDRS) $(BUILD)/libmdcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LUA_CFLAGS) -shared $(LUA_MOD) -o $@ $(BUILD)/libmdcore.a $(LDLIBS)


$(BUILD)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libmdcore.a: $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/%: tests/c/%.c tests/c/check.h $(BUILD)/libmdcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/c $< -o $@ $(BUILD)/libmdcore.a $(LDLIBS) -lutil

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmdcore.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(BUILD)/libmdcore.a $(LDLIBS)

deps:
	sh scripts/install-deps.sh

test: deps $(TEST_BIN) $(BUILD)/tests/test_conv_portable $(BUILD)/mdoctor $(BUILD)/lua/mdoctor/core.so
	sh tests/run.sh $(BUILD)

# the convolution tests once more on a core built without AVX-512 (the
# packed path's plain C fallback), a sub-build of its own, run on BLIS's
# haswell micro-kernel (6x16, C by rows) when the CPU has AVX2, and again
# on its skx one (32x12, C by columns) when the CPU has AVX-512
$(BUILD)/tests/test_conv_portable: FORCE
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/portable MARCH=-march=x86-64-v2 SAN="$(SAN)" $(BUILD)/portable/tests/test_conv
	@mkdir -p $(dir $@)
	@printf '%s\n' '#!/bin/sh' 'grep -qw avx2 /proc/cpuinfo 2>/dev/null && export MD_BLIS_ARCH=3' \
	  'exec "$$(dirname "$$0")/../portable/tests/test_conv"' > $@
	@printf '%s\n' '#!/bin/sh' 'if ! grep -qw avx512f /proc/cpuinfo 2>/dev/null; then' \
	  '  echo "skipped: no AVX-512 here for the skx kernels"; echo "0 passed, 0 failed"; exit 0; fi' \
	  'exec "$$(dirname "$$0")/../portable/tests/test_conv"' > $@_skx
	@chmod +x $@ $@_skx
FORCE:

# the sanitizer build lives in its own tree so the two never mix objects
check-asan: deps
	$(MAKE) BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  build-asan/libmdcore.a build-asan/mdoctor $(TEST_BIN:$(BUILD)/%=build-asan/%)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 sh tests/run.sh build-asan

bench: deps $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

# whole models, mdoctor against PyTorch (bench/run_models.lua); the report
# also goes to $(BUILD)/bench-models.md
bench-models: deps $(BUILD)/mdoctor
	$(BUILD)/mdoctor bench/run_models.lua --out $(BUILD)/bench-models.md \
	  $(if $(THREADS),--threads "$(THREADS)") $(if $(MODELS),--models "$(MODELS)") \
	  $(if $(KINDS),--kinds "$(KINDS)") $(if $(STEPS),--steps $(STEPS)) \
	  $(if $(WARMUP),--warmup $(WARMUP)) $(if $(ROUNDS),--rounds $(ROUNDS))

# the same benchmark in one folder: the shell built for x86-64-v4 (AVX-512)
# and -v3 (AVX2) rather than this CPU, its shared libraries, the Lua
# library, recipes/arch, bench/ and run.sh (bench/make_bundle.sh)
bench-bundle: deps
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/bundle-avx512 MARCH="-march=x86-64-v4 -mtune=generic" $(BUILD)/bundle-avx512/mdoctor
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/bundle-avx2 MARCH="-march=x86-64-v3 -mtune=generic" $(BUILD)/bundle-avx2/mdoctor
	sh bench/make_bundle.sh $(BUILD)/bench-bundle $(BUILD)/bundle-avx512/mdoctor $(BUILD)/bundle-avx2/mdoctor

depend:
	$(CC) -MM -Icore $(CORE_SRC)

clean:
	rm -rf build build-asan

# the main job: the Model Doctor pipeline on Fashion-MNIST (README)
run: deps all
	$(BUILD)/mdoctor recipes/doctor.lua $(ARGS)
