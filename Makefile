# Circles — build, run, test.
#
#   make build    build the phone app, then bin/circled and bin/circlectl
#   make app      build the phone app (npm ci + esbuild) into mobile-api/app/dist
#   make run      start a demo circle on 127.0.0.1:8080 (data in .data/demo)
#   make test     go vet, then every test (needs node + npm for the JS client
#                 and phone app tests, and Debian's chromium for the browser tests)
#   make crash    the kill -9 crash harness, CRASH_TRIALS trials (default 100)
#   make screenshots  retake the phone app's screenshots in docs/screenshots
#   make lint     gofmt, go vet, staticcheck
#   make bench    every benchmark
#   make bench-sync  the same JS automerge-repo clients against the reference
#                 automerge-repo sync server and against circled (REPS, SCENARIOS)
#   make bench-cluster  write throughput and p99: embedded vs 3-node cluster R1 vs R3 (real processes)
#   make capacity  RSS per idle and per active circle, embedded and cluster mode (docs/CAPACITY.md)
#   make soak     200 phones for 30 minutes against circled (SOAK_DURATION, SOAK_DEVICES, SOAK_SEGMENT)
#   make fuzz     each fuzz target for FUZZTIME (fuzz-long: 10 minutes each)
#   make js-deps  install tools/js's npm packages from package-lock.json
#   make image-contents  build what deploy/Dockerfile's image holds and run it as its user
#   make verify-units    systemd-analyze verify deploy/systemd/*
#   make clean    remove build outputs and installed tools (keeps .data)

GO       ?= go
NPM      ?= npm
GOFMT    ?= $(shell $(GO) env GOROOT)/bin/gofmt

# automerge-go links static C libraries: cgo is required.
export CGO_ENABLED := 1

BIN_DIR   := bin
CACHE_BIN := $(CURDIR)/.cache/bin

# staticcheck 2026.2.2; 2026.2 is the first release line built for Go 1.26.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK         := $(CACHE_BIN)/staticcheck-$(STATICCHECK_VERSION)/staticcheck

TEST_TIMEOUT ?= 15m
TEST_FLAGS   ?=

BENCH      ?= .
BENCHTIME  ?= 1s
BENCHCOUNT ?= 3

FUZZTIME ?= 15s

# The phone app: TypeScript in mobile-api/app/src, bundled by esbuild into
# mobile-api/app/dist, which circled embeds (mobile-api/app.go).
APP_DIR   := mobile-api/app
APP_STAMP := $(APP_DIR)/node_modules/.circles-npm-ci.stamp
APP_BUILD := $(APP_DIR)/.build-stamp
APP_SRC   := $(wildcard $(APP_DIR)/src/*) $(APP_DIR)/build.mjs $(APP_DIR)/tsconfig.json $(APP_DIR)/tsconfig.sw.json

JS_DIR   := tools/js
JS_STAMP := $(JS_DIR)/node_modules/.circles-npm-ci.stamp

DEMO_DATA   ?= .data/demo
DEMO_NAME   ?= Demo Tool Library
DEMO_LISTEN ?= 127.0.0.1:8080
DEMO_INVITE ?= $(DEMO_DATA)-invite.json

IMAGE_DIR ?= .cache/image

.PHONY: all build app run test crash screenshots bench bench-cluster capacity bench-sync soak lint fmt-check vet staticcheck js-deps fuzz fuzz-long clean image-contents verify-units

all: build

build: app
	$(GO) build -o $(BIN_DIR)/ ./cmd/...

# app type-checks and bundles the phone app when its sources, its packages
# or the build script changed since the last build.
app: $(APP_BUILD)

$(APP_BUILD): $(APP_STAMP) $(APP_SRC)
	$(NPM) run --prefix $(APP_DIR) --silent typecheck
	$(NPM) run --prefix $(APP_DIR) --silent build
	@touch $@

$(APP_STAMP): $(APP_DIR)/package.json $(APP_DIR)/package-lock.json
	$(NPM) ci --prefix $(APP_DIR) --no-audit --no-fund
	@touch $@

# run initialises the demo circle once (an empty or missing data directory
# means no circle yet), then serves it in the foreground.
run: build
	@set -e; \
	if [ -z "$$(ls -A $(DEMO_DATA) 2>/dev/null)" ]; then \
		mkdir -p $(dir $(DEMO_INVITE)); \
		echo "Creating the demo circle \"$(DEMO_NAME)\" in $(DEMO_DATA)"; \
		$(BIN_DIR)/circled init --data $(DEMO_DATA) --name "$(DEMO_NAME)" --json > $(DEMO_INVITE).tmp; \
		mv $(DEMO_INVITE).tmp $(DEMO_INVITE); \
	fi; \
	invite=$$(sed -n 's/.*"invite"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' $(DEMO_INVITE) 2>/dev/null | head -n 1); \
	if [ -n "$$invite" ]; then \
		echo "Founder invite: $$invite  (single use; saved in $(DEMO_INVITE))"; \
		echo "join it with: $(BIN_DIR)/circlectl --home .data/alice join http://$(DEMO_LISTEN) $$invite"; \
	else \
		echo "No founder invite on record in $(DEMO_INVITE); ask a member for an invite."; \
	fi
	exec $(BIN_DIR)/circled serve --data $(DEMO_DATA) --listen $(DEMO_LISTEN)

# go test's own summary stays the last thing test prints.
test: js-deps app
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT)$(if $(TEST_FLAGS), $(TEST_FLAGS)) ./...

screenshots: app
	$(GO) test -count=1 -run '^TestBrowser(PhoneApp|RecoverRefused|DeviceInvite)$$' ./test/browser/ -update-screenshots

# crash kills a real circled with SIGKILL under mixed load CRASH_TRIALS
# times and checks each restart (cmd/circled/crash_test.go; `make test`
# runs 3 trials). CRASH_SEED replays from a seed. It prints one line per
# trial, a summary, and "N passed, M failed".
CRASH_TRIALS ?= 100
CRASH_SEED   ?=

crash:
	CIRCLES_CRASH_TRIALS=$(CRASH_TRIALS) $(if $(CRASH_SEED),CIRCLES_CRASH_SEED=$(CRASH_SEED)) \
		$(GO) test -count=1 -timeout 90m -run '^TestCrashConsistency$$' -v ./cmd/circled/

# bench runs the scenario benchmarks (one iteration is a whole scenario:
# backlog, latency, cold start, in-process backlog, governance history
# (BENCH=GovernanceHistory: propose+vote at 0, 1,000 and 5,000 decided
# proposals with 50,000 audit entries), first sync from snapshots,
# federation propagation and catch-up; each prints its own figures)
# BENCHCOUNT times, then the micro benchmarks (store, decoder, readers)
# the usual way.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime 1x -count $(BENCHCOUNT) -timeout 60m ./server/ ./sync/engine/ ./federation/replica/
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 30m ./sync/store/ ./crdt/...

# bench-cluster runs one circle as real processes (circled, and
# nats-server built from go.mod's module) embedded, on a 3-node loopback
# cluster at --replicas 1 and at --replicas 3, and prints writes/s and
# p50/p99 of REST ledger writes (cmd/circled/clusterbench_test.go).
bench-cluster:
	$(GO) test -run '^$$' -bench BenchmarkClusterWrites -benchtime 1x -count $(BENCHCOUNT) -timeout 30m ./cmd/circled/

# capacity measures RSS per idle and per active circle with CAPACITY_N
# circled processes, embedded and in cluster mode (docs/CAPACITY.md).
CAPACITY_N ?= 8
capacity:
	CAPACITY_N=$(CAPACITY_N) $(GO) test -run '^$$' -bench BenchmarkCapacity -benchtime 1x -timeout 30m ./cmd/circled/

# bench-sync runs tools/js/bench/run.mjs: the same official automerge-repo
# clients (tools/js/bench/loadgen.mjs) against the reference automerge-repo
# sync server (ANCHOR_DIR: server.mjs and its lock file, copied into
# .cache/bench-anchor and installed there; the shared folder stays
# untouched) and against circled, each scenario on a fresh server with
# fresh data on 127.0.0.1, REPS times; it prints both figures and their
# ratio. SCENARIOS picks some (b50x100 b200x20 lat20-i250 lat20 draft20),
# SCALAR=1 writes strings as ImmutableString, PROFILE_DIR=DIR keeps a CPU
# profile of every circled run. Not part of make test.
ANCHOR_DIR       ?= $(CURDIR)/../shared/bench/node-anchor
BENCH_SYNC_DIR   := $(CURDIR)/.cache/bench-sync
BENCH_ANCHOR     := $(CURDIR)/.cache/bench-anchor
BENCH_ANCHOR_STAMP := $(BENCH_ANCHOR)/node_modules/.circles-npm-install.stamp
REPS      ?= 1
SCENARIOS ?= b50x100 b200x20 lat20-i250 lat20 draft20

bench-sync: js-deps $(BENCH_ANCHOR_STAMP)
	$(GO) build -o $(BENCH_SYNC_DIR)/circled ./cmd/circled
	CIRCLED=$(BENCH_SYNC_DIR)/circled ANCHOR=$(BENCH_ANCHOR) REPS=$(REPS) SCENARIOS="$(SCENARIOS)" \
		node $(JS_DIR)/bench/run.mjs

# The reference server's own README asks for npm install (npm ci trips over
# cbor-extract's optional platform packages).
$(BENCH_ANCHOR_STAMP): $(ANCHOR_DIR)/package-lock.json $(ANCHOR_DIR)/server.mjs
	mkdir -p $(BENCH_ANCHOR)
	cp $(ANCHOR_DIR)/server.mjs $(ANCHOR_DIR)/package.json $(ANCHOR_DIR)/package-lock.json $(BENCH_ANCHOR)/
	cd $(BENCH_ANCHOR) && $(NPM) install --no-audit --no-fund
	@touch $@

# soak runs BenchmarkSoak (server/soak_test.go): SOAK_DEVICES phones
# (default 200) syncing, voting and following events against circled for
# SOAK_DURATION (default 30m), in a circle whose ledger segments close
# every SOAK_SEGMENT changes (default 200; each member's current segment
# starts part full, so the load is steady); it reports RSS and goroutine
# growth after the warm-up (one sample against one, and the medians of the
# sixth after the warm-up and of the last sixth), RSS at rest 25 s after
# the load, and every error; its samples print the Go heap, the C heap and
# live documents beside RSS.
# SOAK_PROFILES=DIR saves the server's heap
# and goroutine profiles there at rest before and after the load, after
# the warm-up and at the end.
soak:
	$(if $(SOAK_PROFILES),mkdir -p $(SOAK_PROFILES))
	CIRCLES_SOAK=1 $(if $(SOAK_PROFILES),SOAK_PROFILES=$(abspath $(SOAK_PROFILES))) $(GO) test -run '^$$' -bench BenchmarkSoak -benchtime 1x -timeout 3h ./server/

lint: fmt-check vet staticcheck

fmt-check:
	@files=$$(find . -path ./.git -prune -o -path ./.cache -prune -o -path ./.data -prune \
		-o -name node_modules -prune -o -name '*.go' -type f -print | xargs -r $(GOFMT) -l 2>&1); \
	if [ -n "$$files" ]; then \
		echo "gofmt: these files need formatting (gofmt -w) or do not parse:"; echo "$$files"; exit 1; \
	fi

vet:
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# npm ci runs again when node_modules is gone or the manifest or lock file
# changed since the last install.
js-deps: $(JS_STAMP)

$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	$(NPM) ci --prefix $(JS_DIR) --no-audit --no-fund
	@touch $@

# fuzz runs every Fuzz target in every package, one at a time (go test
# fuzzes one target per run), for FUZZTIME each. fuzz-long is the same for
# 10 minutes a target; both keep what the fuzzer found interesting as seed
# corpus in the package's testdata/fuzz/<target>/ (commit it), so the
# next run, and every go test, starts from there.
fuzz-long:
	$(MAKE) fuzz FUZZTIME=10m

fuzz:
	@set -e; count=0; \
	for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg); \
		for fn in $$(printf '%s\n' "$$list" | grep '^Fuzz' || true); do \
			count=$$((count + 1)); \
			echo "== $$pkg $$fn for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
			dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
			cache="$$($(GO) env GOCACHE)/fuzz/$$pkg/$$fn"; \
			if [ -d "$$cache" ]; then mkdir -p "$$dir/testdata/fuzz/$$fn" && cp -n "$$cache"/* "$$dir/testdata/fuzz/$$fn/" 2>/dev/null || true; fi; \
		done; \
	done; \
	echo "fuzzed $$count target(s)"

# image-contents runs the build steps of deploy/Dockerfile (deploy/build-app.sh,
# deploy/build.sh) into IMAGE_DIR, then checks the result as the image would run it
# (deploy/check-image-contents.sh): libraries and glibc version against
# the runtime image, and init/serve/backup/restore as uid 65532. For
# machines without a Docker engine; `docker build -f deploy/Dockerfile .`
# where there is one.
image-contents:
	rm -rf $(IMAGE_DIR)
	deploy/build-app.sh
	deploy/build.sh $(IMAGE_DIR)
	deploy/check-image-contents.sh $(IMAGE_DIR)

# verify-units checks the systemd units with systemd-analyze (apt-get
# install systemd), against the binary image-contents builds.
verify-units: image-contents
	deploy/verify-units.sh $(IMAGE_DIR)/usr/local/bin/circled

clean:
	rm -rf $(BIN_DIR) $(CACHE_BIN) $(IMAGE_DIR) $(JS_DIR)/node_modules $(APP_DIR)/node_modules $(APP_BUILD)
	find $(APP_DIR)/dist -mindepth 1 ! -name .keep -delete
