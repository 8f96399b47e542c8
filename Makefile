# dockgate — see README.md. Every target works from a fresh clone.

# Prefer the Go in /usr/local/go: Debian's own golang package is too old for
# go.mod's go 1.26 line and cannot fetch a newer toolchain by itself.
ifneq ($(wildcard /usr/local/go/bin/go),)
export PATH := /usr/local/go/bin:$(PATH)
endif

GO           ?= go
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -s -w -X main.version=$(VERSION)
TEST_TIMEOUT ?= 60m
FUZZTIME     ?= 10s

# make run: the socket dockgate serves, the daemon it fronts, extra flags
# (e.g. RUN_ARGS='--socket-group docker' to let the docker group in).
USER_ID      := $(shell id -u)
RUN_DIR      ?= $(if $(filter 0,$(USER_ID)),/run/dockgate,$(if $(XDG_RUNTIME_DIR),$(XDG_RUNTIME_DIR)/dockgate,/tmp/dockgate-$(USER_ID)))
UPSTREAM     ?= unix:///var/run/docker.sock
RUN_ARGS     ?=

.PHONY: all build test lint run demo bench fuzz clean install uninstall deb engine

# make install / make uninstall / make deb (docs/operations.md). The binary
# goes to $(DESTDIR)$(BINDIR), the units to $(DESTDIR)$(UNITDIR) with their
# ExecStart pointing at $(BINDIR)/dockgate, the config and the default policy
# to $(DESTDIR)/etc/dockgate, where the binary looks for them whatever the
# PREFIX. Installing to the real root (DESTDIR empty) also creates the
# dockgate system group and user the units name.
PREFIX       ?= /usr/local
DESTDIR      ?=
BINDIR       ?= $(PREFIX)/bin
DOCDIR       ?= $(PREFIX)/share/doc/dockgate
UNITDIR      ?= /lib/systemd/system
CONFDIR      ?= /etc/dockgate
# The .deb: a Debian version must start with a digit; an untagged tree
# (git describe gives a commit) becomes 0~git<commit>.
DEB_VERSION  ?= $(shell echo '$(VERSION)' | sed -E -e 's/^v//' -e 's/-/./g' -e '/^[0-9]+\./!s/^/0~git/')
DEB_ARCH     ?= $(shell dpkg --print-architecture 2>/dev/null || $(GO) env GOARCH)
DEB_STAGE    := bin/deb-root
DEB_FILE     := bin/dockgate_$(DEB_VERSION)_$(DEB_ARCH).deb

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
# into a failure, which is what .ci/run sets. They run against both engines
# (Debian's dockerd 20.10 and the current Engine, built once by `make
# engine` or by the first test that needs it; DOCKGATE_E2E_ENGINE=debian or
# current picks one: test/README.md). The tests run even when lint fails,
# so that one run reports every problem.
test:
	@status=0; \
	$(GOFMT_CHECK) || status=1; \
	echo "$(GO) vet ./..."; $(GO) vet ./... || status=1; \
	echo "$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./..."; \
	summary=$$(mktemp); \
	DOCKGATE_E2E_SUMMARY=$$summary $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./... || status=1; \
	echo "engines the end-to-end tests ran against:"; cat $$summary; rm -f $$summary; \
	exit $$status

run: build
	@mkdir -p -m 0755 $(RUN_DIR)
	@[ -O $(RUN_DIR) ] || { echo "$(RUN_DIR) belongs to someone else" >&2; exit 1; }
	@[ -S "$(patsubst unix://%,%,$(UPSTREAM))" ] || echo "warning: no Docker daemon socket at $(UPSTREAM)" >&2
	@echo "dockgate: serving $(RUN_DIR)/docker.sock in front of $(UPSTREAM) (embedded default policy, audit records on stdout)"
	@echo "in another shell:"
	@echo "  export DOCKER_HOST=unix://$(RUN_DIR)/docker.sock"
	exec bin/dockgate serve --listen unix://$(RUN_DIR)/docker.sock --upstream $(UPSTREAM) --audit-log - $(RUN_ARGS)

# The current Engine for the end-to-end tests, built from Go modules into
# /var/cache/dockgate-e2e (DOCKGATE_E2E_CACHE) unless already there: about
# 15-20 minutes cold on 2 cores, nothing when built. Needs libseccomp-dev
# and pkg-config (runc).
engine:
	$(GO) run ./test/engine

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

# The files of /etc/dockgate are installed only when absent: one that is
# there already is the administrator's and is kept, changed or not.
CONFFILES := packaging/dockgate.yaml:dockgate.yaml policies/default/default.csv:policy/default.csv policies/default/default_test.yaml:policy/default_test.yaml policies/model.conf:policy/model.conf

install: build
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(CONFDIR)/policy
	install -m 0755 bin/dockgate $(DESTDIR)$(BINDIR)/dockgate
	for u in dockgate.service dockgate.socket; do \
		sed -e 's#/usr/local/bin/dockgate#$(BINDIR)/dockgate#g' -e 's#/usr/share/doc/dockgate#$(DOCDIR)#g' systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 docs/operations.md docs/policy-language.md docs/policy.md docs/audit.md docs/containers.md docs/tenancy.md docs/policy-testing.md README.md $(DESTDIR)$(DOCDIR)/
	for p in policies/examples/*/; do \
		install -d -m 0755 $(DESTDIR)$(DOCDIR)/examples/$$(basename $$p) && \
		install -m 0644 $$p*.csv $$p*_test.yaml $(DESTDIR)$(DOCDIR)/examples/$$(basename $$p)/ || exit 1; \
	done
	@for pair in $(CONFFILES); do \
		src=$${pair%%:*}; dst=$(DESTDIR)$(CONFDIR)/$${pair#*:}; \
		if [ ! -e "$$dst" ]; then \
			echo "install -m 0644 $$src $$dst"; install -m 0644 "$$src" "$$dst" || exit 1; \
		elif cmp -s "$$src" "$$dst"; then \
			echo "$$dst: already installed, unchanged"; \
		else \
			echo "$$dst: kept as it is (it differs from $$src, which was not installed)"; \
		fi; \
	done
	@if [ -z "$(DESTDIR)" ]; then \
		getent group dockgate >/dev/null || { echo "groupadd --system dockgate"; groupadd --system dockgate; } || exit 1; \
		getent passwd dockgate >/dev/null || { echo "useradd --system dockgate"; useradd --system --gid dockgate --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin dockgate; } || exit 1; \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
		echo "installed; start it with: systemctl enable --now dockgate.socket dockgate.service"; \
	fi

# Removes what install installed, except the files of /etc/dockgate that
# were changed since (kept, and named) and the dockgate user and group
# (files such as the audit log may still belong to them).
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now dockgate.socket dockgate.service 2>/dev/null || true; \
	fi
	rm -f $(DESTDIR)$(BINDIR)/dockgate $(DESTDIR)$(UNITDIR)/dockgate.service $(DESTDIR)$(UNITDIR)/dockgate.socket
	rm -rf $(DESTDIR)$(DOCDIR)
	@for pair in $(CONFFILES); do \
		src=$${pair%%:*}; dst=$(DESTDIR)$(CONFDIR)/$${pair#*:}; \
		if [ ! -e "$$dst" ] || cmp -s "$$src" "$$dst"; then \
			rm -f "$$dst"; \
		else \
			echo "$$dst: kept (changed since it was installed)"; \
		fi; \
	done
	@rmdir $(DESTDIR)$(CONFDIR)/policy $(DESTDIR)$(CONFDIR) 2>/dev/null || true
	@if [ -z "$(DESTDIR)" ]; then \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
		echo "the dockgate user and group stay: userdel dockgate; groupdel dockgate to remove them"; \
	fi

# A Debian package built with dpkg-deb from a make install into a staging
# directory, with the maintainer scripts of packaging/debian.
deb:
	rm -rf $(DEB_STAGE)
	$(MAKE) install DESTDIR=$(CURDIR)/$(DEB_STAGE) PREFIX=/usr DOCDIR=/usr/share/doc/dockgate
	install -d -m 0755 $(DEB_STAGE)/DEBIAN
	find $(DEB_STAGE) -type d -exec chmod 0755 {} +
	sed -e 's/@VERSION@/$(DEB_VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
		-e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_STAGE) | cut -f1)/" packaging/debian/control >$(DEB_STAGE)/DEBIAN/control
	cd $(DEB_STAGE) && find etc -type f | sed 's#^#/#' | sort >DEBIAN/conffiles
	chmod 0644 $(DEB_STAGE)/DEBIAN/control $(DEB_STAGE)/DEBIAN/conffiles
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm $(DEB_STAGE)/DEBIAN/
	dpkg-deb --root-owner-group -Zxz --build $(DEB_STAGE) $(DEB_FILE)
	rm -rf $(DEB_STAGE)
	@echo "built $(DEB_FILE)"

clean:
	rm -rf bin
	$(GO) clean -testcache
