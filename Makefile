# Parley build. `make run` and `make test` are the two commands the README promises: both set up
# missing dependencies first (scripts/deps.sh), then build. Objects of the release build go to
# build/release, of the sanitizer test build to build/asan.

CC      ?= cc
LLHTTP  ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
WARN    := -Wall -Wextra -Wpedantic -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CSTD    := -std=c11 -D_GNU_SOURCE
INC     := -Isrc -I$(LLHTTP_INC)
LIBS    := -luv -lwslay -lcrypto -ljansson -lsqlite3 -lsodium -lunistring -lpthread -lm

REL_CFLAGS  := $(CSTD) $(WARN) -O2 -g $(INC)
ASAN_CFLAGS := $(CSTD) $(WARN) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined $(INC)
ASAN_LDFLAGS := -fsanitize=address,undefined

SRCS      := $(shell find src -name '*.c' | sort)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
LLHTTP_SRCS := $(LLHTTP)/api.c $(LLHTTP)/http.c $(LLHTTP)/llhttp.c

REL_OBJS  := $(LIB_SRCS:%.c=build/release/%.o) build/release/llhttp/api.o \
             build/release/llhttp/http.o build/release/llhttp/llhttp.o
ASAN_OBJS := $(LIB_SRCS:%.c=build/asan/%.o) build/asan/llhttp/api.o \
             build/asan/llhttp/http.o build/asan/llhttp/llhttp.o
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)

PORT ?= 8080
export PARLEY_LISTEN ?= 127.0.0.1:$(PORT)

.PHONY: all deps build run test unit integration sdk e2e bench clean format
# Keep test objects: make would delete them as intermediates and rebuild every run.
.SECONDARY:
all: build

deps:
	@scripts/deps.sh

build: deps build/parley

build/parley: $(REL_OBJS) build/release/src/main.o
	$(CC) -o $@ $^ $(LIBS)

build/parley-asan: $(ASAN_OBJS) build/asan/src/main.o
	$(CC) $(ASAN_LDFLAGS) -o $@ $^ $(LIBS)

build/release/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -MMD -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -MMD -c -o $@ $<

# llhttp is compiled from Debian's node-llhttp sources, never copied into this tree. Its
# generated code is not ours to warn about.
build/release/llhttp/%.o: $(LLHTTP)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O2 -g -I$(LLHTTP_INC) -w -c -o $@ $<
build/asan/llhttp/%.o: $(LLHTTP)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -O1 -g -fsanitize=address,undefined -I$(LLHTTP_INC) -w -c -o $@ $<

build/asan/tests/%: build/asan/tests/unit/%.o $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

# The web app is rebuilt when its sources or the SDK it imports change.
WEB_SRCS := $(shell find web/src clients/js/src -type f 2>/dev/null) web/index.html \
            web/package.json web/package-lock.json web/vite.config.ts
web/dist/index.html: $(WEB_SRCS)
	@scripts/build-web.sh

run: build web/dist/index.html
	@mkdir -p data
	./build/parley

unit: deps $(UNIT_BINS)
	@scripts/run-unit.sh $(UNIT_BINS)

integration: deps build/parley-asan web/dist/index.html node_modules/.package-lock.json
	PARLEY_BIN=build/parley-asan node --test --test-concurrency=1 tests/integration/

node_modules/.package-lock.json: package.json
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

# Browser tests: Debian's chromium driven by playwright-core against the real server serving the
# built app (tests/e2e/run.sh installs chromium and the npm packages when missing).
e2e: deps build/parley-asan node_modules/.package-lock.json
	PARLEY_BIN=build/parley-asan tests/e2e/run.sh

# The TypeScript SDK: unit tests with a fake socket and clock, integration tests against the
# real server.
sdk: deps build/parley-asan node_modules/.package-lock.json
	cd clients/js && { [ -f node_modules/.package-lock.json ] && \
	  [ node_modules/.package-lock.json -nt package-lock.json ] || \
	  npm ci --no-audit --no-fund --loglevel=error; } && PARLEY_BIN=build/parley-asan npm test

test: unit integration sdk e2e

bench: build bench/build/loadgen
	@bench/run.sh

bench/build/loadgen: $(wildcard bench/*.c bench/*.h)
	$(MAKE) -C bench

clean:
	rm -rf build bench/build

format:
	clang-format -i $(SRCS) $(wildcard src/*/*.h tests/unit/*.c bench/*.c)

-include $(shell find build -name '*.d' 2>/dev/null)
