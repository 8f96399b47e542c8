# dockgate — see README.md. Every target works from a fresh clone.

# Prefer the Go in /usr/local/go: Debian's own golang package is too old for
# go.mod's go 1.26 line and cannot fetch a newer toolchain by itself.
ifneq ($(wildcard /usr/local/go/bin/go),)
export PATH := /usr/local/go/bin:$(PATH)
endif

GO           ?= go
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -s -w -X main.version=$(VERSION)
TEST_TIMEOUT ?= 30m
FUZZTIME     ?= 10s

# make run: the socket dockgate serves, the daemon it fronts, extra flags
# (e.g. RUN_ARGS='--socket-group docker' to let the docker group in).
USER_ID      := $(shell id -u)
RUN_DIR      ?= $(if $(filter 0,$(USER_ID)),/run/dockgate,$(if $(XDG_RUNTIME_DIR),$(XDG_RUNTIME_DIR)/dockgate,/tmp/dockgate-$(USER_ID)))
UPSTREAM     ?= unix:///var/run/docker.sock
RUN_ARGS     ?=

.PHONY: all build test lint run demo bench fuzz clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/dockgate ./cmd/dockgate

# gofmt -l lists files that need formatting but exits 0 either way.
GOFMT_CHECK = out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; false; fi

lint:
	@$(GOFMT_CHECK)
	$(GO) vet ./...

# The end-to-end tests skip themselves unless they can start a private
# dockerd (root, docker.io installed); DOCKGATE_E2E=required turns that skip
# into a failure, which is what .ci/run sets. The tests run even when lint
# fails, so that one run reports every problem.
test:
	@status=0; \
	$(GOFMT_CHECK) || status=1; \
	echo "$(GO) vet ./..."; $(GO) vet ./... || status=1; \
	echo "$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./..."; \
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./... || status=1; \
	exit $$status

run: build
	@mkdir -p -m 0755 $(RUN_DIR)
	@[ -O $(RUN_DIR) ] || { echo "$(RUN_DIR) belongs to someone else" >&2; exit 1; }
	@[ -S "$(patsubst unix://%,%,$(UPSTREAM))" ] || echo "warning: no Docker daemon socket at $(UPSTREAM)" >&2
	@echo "dockgate: serving $(RUN_DIR)/docker.sock in front of $(UPSTREAM) (embedded default policy, audit records on stdout)"
	@echo "in another shell:"
	@echo "  export DOCKER_HOST=unix://$(RUN_DIR)/docker.sock"
	exec bin/dockgate serve --listen unix://$(RUN_DIR)/docker.sock --upstream $(UPSTREAM) --audit-log - $(RUN_ARGS)

demo:
	sh test/demo/deps.sh
	$(GO) run ./test/demo

bench:
	$(GO) run ./test/bench -out bench/results.json -rev $(VERSION) $(BENCH_ARGS)

# Every Fuzz target of every package, FUZZTIME each. go test -list prints a
# package's matching names followed by its "ok <package>" line, which is
# what pairs each name with its package.
#
# Go 1.26's fuzz coordinator can fail a run with a bare "context deadline
# exceeded" just as -fuzztime ends (go.dev/issue/75804, fixed in Go 1.27).
# Such a failure found nothing: a real one writes its input to
# testdata/fuzz/<target>/. So a failure is only a failure when a new input
# was written or the message is anything else.
fuzz:
	@list=$$($(GO) test -list '^Fuzz' ./...) || exit 1; \
	targets=$$(echo "$$list" | awk '/^Fuzz/ { n[++c] = $$1 } /^ok/ { for (i = 1; i <= c; i++) print $$2 ":" n[i]; c = 0 }'); \
	out=$$(mktemp); trap 'rm -f "$$out" "$$out.rc"' EXIT; failed=; \
	for t in $$targets; do \
		pkg=$${t%:*}; name=$${t##*:}; \
		corpus=$$($(GO) list -f '{{.Dir}}' "$$pkg")/testdata/fuzz/$$name || exit 1; \
		before=$$(ls "$$corpus" 2>/dev/null | wc -l); \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		{ $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg" 2>&1; echo $$? >"$$out.rc"; } | tee "$$out"; \
		[ "$$(cat "$$out.rc")" = 0 ] && continue; \
		if [ "$$(ls "$$corpus" 2>/dev/null | wc -l)" = "$$before" ] && grep -q '^    context deadline exceeded$$' "$$out"; then \
			echo "fuzz: $$name: spurious deadline failure (go.dev/issue/75804), no failing input: not counted"; \
		else \
			failed="$$failed $$name"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: FAIL:$$failed"; exit 1; fi; \
	echo "fuzz: every target passed"

clean:
	rm -rf bin
	$(GO) clean -testcache
