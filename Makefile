# Parley build. `make run` and `make test` are the two commands the README promises: both set up
# missing dependencies first (scripts/deps.sh), then run make again for the build, so that every
# rule is looked at after the install (make caches what it found missing before). Objects of the
# release build go to build/release, of the sanitizer test build to build/asan.

CC      ?= cc
# Debian's node-llhttp, unpacked (not installed) by scripts/llhttp.sh.
LLHTTP_PKG := build/deps/node-llhttp
LLHTTP  ?= $(LLHTTP_PKG)/usr/share/llhttp
LLHTTP_INC ?= $(LLHTTP_PKG)/usr/share/include/llhttp
# A Node >= 20.19 that scripts/node.sh put in build/node, when the machine's is older, comes first.
export PATH := $(CURDIR)/build/node/bin:$(PATH)
WARN    := -Wall -Wextra -Wpedantic -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CSTD    := -std=c11 -D_GNU_SOURCE
# libpq-dev puts libpq-fe.h in its own folder.
PQ_INC  ?= /usr/include/postgresql
INC     := -Isrc -I$(LLHTTP_INC) -I$(PQ_INC)
# libgd decodes and re-encodes avatars (src/media/image.c); libwebp reads a WebP header first.
GD_LIBS ?= $(shell pkg-config --libs gdlib libwebp 2>/dev/null || echo -lgd -lwebp)
LIBS    := -luv -lwslay -lcrypto -ljansson -lsqlite3 -lsodium -lunistring -lhiredis -lpq -lcurl -lpthread -lm \
           $(GD_LIBS)

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

.PHONY: all deps deps-run build run serve test test-all help unit integration integration-pg sdk e2e \
        fuzz-ci valgrind bench clean format
# Keep test objects: make would delete them as intermediates and rebuild every run.
.SECONDARY:
all: build

help:
	@echo "make run          install what is missing (scripts/deps.sh run), build, serve http://127.0.0.1:$(PORT)"
	@echo "make test         install what is missing for the tests too, then every test below, in order"
	@echo "make build        build/parley, the release server (the default target)"
	@echo "make unit         cmocka unit tests under ASan/UBSan, the store suites on SQLite and PostgreSQL"
	@echo "make fuzz-ci      every libFuzzer target for 20 s (make fuzz FUZZ_SECONDS=N for longer)"
	@echo "make valgrind     the release server under valgrind through part of the integration tests"
	@echo "make integration  Node integration tests against the sanitizer build"
	@echo "make integration-pg  the store-heavy integration files again, on PostgreSQL"
	@echo "make sdk          the TypeScript SDK's unit and integration tests"
	@echo "make e2e          browser tests (Debian's chromium, playwright-core)"
	@echo "make bench        the load generator against a release build (bench/README.md)"
	@echo "make cluster      a local three-node demo on :8081-8083 over PostgreSQL and Redis"
	@echo "make deps         install what make test needs (make deps-run: what make run needs)"
	@echo "make format       clang-format the C sources"
	@echo "make clean        stop the throwaway databases, delete build/"

deps:
	@scripts/deps.sh test
deps-run:
	@scripts/deps.sh run

build: deps-run
	@$(MAKE) --no-print-directory build/parley

build/parley: $(REL_OBJS) build/release/src/main.o
	$(CC) -o $@ $^ $(LIBS)

build/parley-asan: $(ASAN_OBJS) build/asan/src/main.o
	$(CC) $(ASAN_LDFLAGS) -o $@ $^ $(LIBS)

build/release/%.o: %.c $(wildcard src/*/*.h) | $(LLHTTP_INC)/llhttp.h
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -MMD -c -o $@ $<

build/asan/%.o: %.c | $(LLHTTP_INC)/llhttp.h
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -MMD -c -o $@ $<

# llhttp is compiled from Debian's node-llhttp sources, never copied into this tree. Its
# generated code is not ours to warn about.
$(LLHTTP_SRCS) $(LLHTTP_INC)/llhttp.h &:
	@scripts/llhttp.sh
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

# The server prints the URL to open once it listens; Ctrl-C stops it.
run: deps-run
	@$(MAKE) --no-print-directory serve
serve: build/parley web/dist/index.html
	@mkdir -p data
	@exec ./build/parley

# No two files of src/ may depend on each other in a circle (scripts/callgraph-check.py reads the
# includes and the objects' symbol tables of the sanitizer build).
.PHONY: callgraph
callgraph: build/parley-asan
	@CALLGRAPH_INC="$(INC)" scripts/callgraph-check.py build/asan

# The bus contract suite (test_bus) also runs against a throwaway Redis (scripts/redis.sh).
REDIS_URL = $(shell scripts/redis.sh url)
# The store contract suites run twice: on SQLite, then on a throwaway PostgreSQL (scripts/pg.sh).
PG_URL = $(shell scripts/pg.sh url)
STORE_UNIT_BINS := build/asan/tests/test_store build/asan/tests/test_store_members
unit: deps $(UNIT_BINS) callgraph
	@scripts/redis.sh start
	@rc=0; PARLEY_TEST_REDIS=$(REDIS_URL) scripts/run-unit.sh $(UNIT_BINS) || rc=$$?; \
	  scripts/redis.sh stop >/dev/null 2>&1 || true; exit $$rc
	@scripts/pg.sh start
	@echo "unit: the store suites again, on PostgreSQL ($(PG_URL))"
	@rc=0; PARLEY_TEST_PG=$(PG_URL) scripts/run-unit.sh $(STORE_UNIT_BINS) || rc=$$?; \
	  scripts/pg.sh stop >/dev/null 2>&1 || true; exit $$rc

# The store-heavy integration files once more, every server on PostgreSQL (a schema each), and
# the cluster files (5x-cluster-*: three nodes on one schema and a throwaway Redis), which is how
# several nodes are deployed.
PG_INTEGRATION := 04-chat 05-messages 06-resume 07-durability 11-membership 12-invitations \
                  13-access-matrix 14-cap-race 18-store-conns 50-cluster 51-cluster-members \
                  52-cluster-live 60-msg-model 61-dm 53-cluster-activity 65-live-list 66-browse 67-profile \
                  68-avatar-password 68-search 70-streams 71-cluster-streams 72-bots 73-bot-http \
                  74-webhooks 48-big-chat \
                  49-chat-members
integration-pg: deps build/parley-asan web/dist/index.html node_modules/.package-lock.json
	@scripts/pg.sh start
	@rc=0; PARLEY_TEST_STORE=$(PG_URL) PARLEY_BIN=build/parley-asan node --test --test-concurrency=1 \
	  $(PG_INTEGRATION:%=tests/integration/%.test.mjs) || rc=$$?; \
	  scripts/pg.sh stop >/dev/null 2>&1 || true; $(STOP_CLUSTER_REDIS); exit $$rc

integration: deps build/parley-asan web/dist/index.html node_modules/.package-lock.json
	@rc=0; PARLEY_BIN=build/parley-asan node --test --test-concurrency=1 tests/integration/ || rc=$$?; \
	  $(STOP_CLUSTER_REDIS); exit $$rc

# The cluster tests (tests/integration/lib/cluster.mjs) share one Redis on port 16380 (or
# PARLEY_TEST_CLUSTER_REDIS_PORT) across their files; nothing should be left listening once the
# suite is over.
STOP_CLUSTER_REDIS := PARLEY_REDIS_PORT=$${PARLEY_TEST_CLUSTER_REDIS_PORT:-16380} scripts/redis.sh stop \
                      >/dev/null 2>&1 || true

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

# The shipped bot (bots/assistant): its tests run against a fake OpenAI-compatible endpoint, with
# a fake Parley (stall, error mid-stream, disconnect mid-answer) and with the real server.
.PHONY: assistant
assistant: deps build/parley-asan node_modules/.package-lock.json
	cd bots/assistant && { [ -f node_modules/.package-lock.json ] && \
	  [ node_modules/.package-lock.json -nt package-lock.json ] || \
	  npm ci --no-audit --no-fund --loglevel=error; } && PARLEY_BIN=build/parley-asan npm test

# Every fuzz target for a bounded time (replaying every crash found so far first); `make fuzz`
# with a larger FUZZ_SECONDS for real fuzzing sessions.
fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=20

# The release binary under valgrind's memcheck (scripts/valgrind-parley.sh) through the parts of
# the integration suite that exercise every module; any error or definite leak fails the file.
VALGRIND_TESTS := 02-auth 04-chat 05-messages 06-resume 07-durability 11-membership \
                  12-invitations 15-events 21-typing 30-ws-conformance
valgrind: deps build/parley web/dist/index.html node_modules/.package-lock.json
	PARLEY_BIN=scripts/valgrind-parley.sh PARLEY_TEST_TIMEOUT_MS=30000 node --test \
	  --test-concurrency=1 $(VALGRIND_TESTS:%=tests/integration/%.test.mjs)

test: deps
	@$(MAKE) --no-print-directory test-all
test-all: unit fuzz-ci valgrind integration integration-pg sdk assistant e2e

bench: build bench/build/loadgen
	@bench/run.sh

bench/build/loadgen: $(wildcard bench/*.c bench/*.h) src/common/hist.c src/common/hist.h
	$(MAKE) -C bench

# A local three-node demo on 127.0.0.1:8081-8083 over PostgreSQL and Redis, as several nodes are
# deployed: PARLEY_STORE=postgres://... when set, else a throwaway PostgreSQL (scripts/pg.sh), and
# a throwaway Redis (scripts/redis.sh). The first node creates the schema before the others
# start. Ctrl-C stops the nodes (the servers stay: scripts/pg.sh stop, scripts/redis.sh stop).
.PHONY: cluster
cluster: build web/dist/index.html
	@scripts/redis.sh start
	@[ -n "$$PARLEY_STORE" ] || scripts/pg.sh start
	@mkdir -p data
	@store="$${PARLEY_STORE:-$$(scripts/pg.sh url)}"; \
	trap 'kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	for p in 8081 8082 8083; do \
	  PARLEY_LISTEN=127.0.0.1:$$p PARLEY_STORE="$$store" PARLEY_BUS=$$(scripts/redis.sh url) \
	    ./build/parley & \
	  sleep 0.5; \
	done; echo "cluster: http://127.0.0.1:8081 :8082 :8083 on PostgreSQL (Ctrl-C stops)"; wait

clean:
	-@scripts/pg.sh stop 2>/dev/null
	-@scripts/redis.sh stop 2>/dev/null
	rm -rf build bench/build

format:
	clang-format -i $(SRCS) $(wildcard src/*/*.h tests/unit/*.c bench/*.c)

-include $(shell find build -name '*.d' 2>/dev/null)

# libFuzzer targets (tests/fuzz/): clang with ASan+UBSan. Each runs for FUZZ_SECONDS on a copy of
# its seed corpus (new inputs go to build/fuzz/corpus/, never into the tree), after replaying the
# reproducers of bugs found before (tests/fuzz/crashes/<target>/). A crash, leak or sanitizer
# report fails the target and leaves the reproducer as build/fuzz/<target>-crash-*.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz_proto fuzz_http fuzz_ws fuzz_store fuzz_cluster_wire
FUZZ_CFLAGS  := $(CSTD) -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined $(INC) -Itests/fuzz
FUZZ_LDFLAGS := -fsanitize=fuzzer,address,undefined
# proto and all of core/ (pure logic, no I/O: a new core module links without touching this).
FUZZ_PROTO_OBJS := build/fuzz/src/proto/proto.o build/fuzz/src/common/error.o \
                   $(patsubst %.c,build/fuzz/%.o,$(wildcard src/core/*.c))
FUZZ_NET_OBJS := build/fuzz/src/net/http.o build/fuzz/src/net/ws.o build/fuzz/src/net/outq.o \
                 build/fuzz/src/net/conn_queue.o build/fuzz/src/core/ratelimit.o \
                 build/fuzz/src/common/buf.o build/fuzz/src/common/error.o \
                 build/fuzz/src/common/log.o build/fuzz/tests/fuzz/fake_server.o \
                 build/fuzz/llhttp/api.o build/fuzz/llhttp/http.o build/fuzz/llhttp/llhttp.o

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_TARGETS:%=build/fuzz/%)

fuzz: deps fuzz-build
	@fail=""; for t in $(FUZZ_TARGETS); do \
	  if ls tests/fuzz/crashes/$$t/* >/dev/null 2>&1; then \
	    echo "fuzz: $$t: replaying tests/fuzz/crashes/$$t/"; \
	    build/fuzz/$$t tests/fuzz/crashes/$$t/* >build/fuzz/$$t-replay.log 2>&1 || \
	      { grep -E 'Assertion|ERROR|runtime error' build/fuzz/$$t-replay.log | head -n 3; \
	        fail="$$fail $$t(replay)"; }; \
	  fi; \
	  mkdir -p build/fuzz/corpus/$$t; cp tests/fuzz/corpus/$$t/* build/fuzz/corpus/$$t/; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  if build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=70000 -timeout=10 \
	      -rss_limit_mb=2048 -print_final_stats=1 -dict=tests/fuzz/$$t.dict \
	      -artifact_prefix=build/fuzz/$$t- build/fuzz/corpus/$$t >build/fuzz/$$t.log 2>&1; then \
	    grep -E '(DONE|stat::average_exec_per_sec)' build/fuzz/$$t.log; \
	  else \
	    grep -E 'Assertion|ERROR|runtime error|Test unit written' build/fuzz/$$t.log | head -n 4; \
	    fail="$$fail $$t"; \
	  fi; \
	done; \
	if [ -n "$$fail" ]; then echo "fuzz: FAILED:$$fail (logs in build/fuzz/)"; exit 1; fi

build/fuzz/fuzz_proto: build/fuzz/tests/fuzz/fuzz_proto.o $(FUZZ_PROTO_OBJS)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ -ljansson -lunistring
# Every store module (a new one links without touching this rule) and the core it calls.
FUZZ_STORE_OBJS := $(patsubst %.c,build/fuzz/%.o,$(wildcard src/store/*.c)) \
                   build/fuzz/src/common/log.o \
                   build/fuzz/src/common/clock.o build/fuzz/src/common/hist.o \
                   build/fuzz/src/common/buf.o
build/fuzz/fuzz_store: build/fuzz/tests/fuzz/fuzz_store.o $(FUZZ_PROTO_OBJS) $(FUZZ_STORE_OBJS)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ -ljansson -lsqlite3 -lpq -luv -lunistring -lpthread
build/fuzz/fuzz_cluster_wire: build/fuzz/tests/fuzz/fuzz_cluster_wire.o \
                             build/fuzz/src/app/cluster_wire.o build/fuzz/src/common/error.o
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^
build/fuzz/fuzz_http build/fuzz/fuzz_ws: build/fuzz/%: build/fuzz/tests/fuzz/%.o $(FUZZ_NET_OBJS)
	$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $^ -luv -lwslay -lcrypto -lunistring

build/fuzz/%.o: %.c $(wildcard src/*/*.h tests/fuzz/*.h) | $(LLHTTP_INC)/llhttp.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(WARN) -Wno-missing-field-initializers -c -o $@ $<
build/fuzz/llhttp/%.o: $(LLHTTP)/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -I$(LLHTTP_INC) -w -c -o $@ $<
