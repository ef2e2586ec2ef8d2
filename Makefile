# Circles — build, run, test.
#
#   make build    build bin/circled and bin/circlectl
#   make run      start a demo circle on 127.0.0.1:8080 (data in .data/demo)
#   make test     go vet, then every test (needs node + npm for the JS client test)
#   make crash    the kill -9 crash harness, CRASH_TRIALS trials (default 100)
#   make lint     gofmt, go vet, staticcheck
#   make bench    every benchmark
#   make fuzz     each fuzz target for FUZZTIME
#   make js-deps  install tools/js's npm packages from package-lock.json
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

JS_DIR   := tools/js
JS_STAMP := $(JS_DIR)/node_modules/.circles-npm-ci.stamp

DEMO_DATA   ?= .data/demo
DEMO_NAME   ?= Demo Tool Library
DEMO_LISTEN ?= 127.0.0.1:8080
DEMO_INVITE ?= $(DEMO_DATA)-invite.json

.PHONY: all build run test crash bench lint fmt-check vet staticcheck js-deps fuzz clean

all: build

build:
	$(GO) build -o $(BIN_DIR)/ ./cmd/...

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
test: js-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT)$(if $(TEST_FLAGS), $(TEST_FLAGS)) ./...

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
# backlog, latency, cold start, in-process backlog; each prints its own
# figures) BENCHCOUNT times, then the micro benchmarks (store, decoder,
# readers) the usual way.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime 1x -count $(BENCHCOUNT) -timeout 60m ./server/ ./sync/engine/
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 30m ./sync/store/ ./crdt/...

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
# fuzzes one target per run).
fuzz:
	@set -e; count=0; \
	for pkg in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg); \
		for fn in $$(printf '%s\n' "$$list" | grep '^Fuzz' || true); do \
			count=$$((count + 1)); \
			echo "== $$pkg $$fn for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done; \
	echo "fuzzed $$count target(s)"

clean:
	rm -rf $(BIN_DIR) $(CACHE_BIN) $(JS_DIR)/node_modules
