# satchel's build, test and demo entry points. See README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build test vet demo dovecot fuzz crash bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/satchel ./cmd/satchel

# The whole suite, with the race detector, against a real Dovecot.
test: dovecot vet
	$(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

# Dovecot, Cyrus and Courier are what the tests talk to, and notmuch what
# the mail-reader test drives. As root, install them if missing; as anyone
# else, their tests skip loudly (SATCHEL_REQUIRE_DOVECOT=1,
# SATCHEL_REQUIRE_CYRUS=1, SATCHEL_REQUIRE_COURIER=1 and
# SATCHEL_REQUIRE_NOTMUCH=1 make that a failure).
dovecot:
	@if ! command -v doveadm >/dev/null 2>&1 || ! command -v notmuch >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing dovecot-imapd and notmuch for the tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd notmuch >/dev/null; \
	  else \
	    echo "*** doveadm or notmuch not found: their tests will SKIP. Install dovecot-imapd and notmuch (Debian/Ubuntu) to run them. ***"; \
	  fi; \
	fi
	@# Cyrus and Courier conflict with Dovecot as packages: their trees
	@# are extracted beside it (see .ci/install-cyrus, .ci/install-courier).
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  .ci/install-cyrus && .ci/install-courier; \
	else \
	  echo "*** not root: Cyrus and Courier are not installed; their tests will SKIP. Run .ci/install-cyrus and .ci/install-courier as root to run them. ***"; \
	fi

# The SIGKILL crash harness at length: CRASH_KILLS kills per scenario
# (`make test` runs 10). SATCHEL_CRASH_SEED=N replays a run,
# SATCHEL_CRASH_AT=REGEXP kills each run at the first traced command that
# matches; the traces, logs and index copies of a failed round are kept
# under $SATCHEL_CRASH_ARTIFACTS (default $TMPDIR/satchel-crash).
CRASH_KILLS ?= 300
crash: dovecot
	$(GO) vet ./sync/crashtest/
	SATCHEL_CRASH_KILLS=$(CRASH_KILLS) $(GO) test -count=1 -timeout 8h -v -run '^TestCrash$$' ./sync/crashtest/

# The "faster than mbsync" benchmark: bin/satchel (a normal build, without
# -race) against mbsync on a real Dovecot, printed as a table. About 5 to
# 10 minutes at full size on two cores; BENCHFLAGS=-quick is a one-minute
# smoke run, -million measures a mailbox of a million messages instead
# (satchel alone, about 20 minutes), -install lets it apt-get isync when
# mbsync is missing (as root), -readme=README.md writes the table into
# README's Performance section, -json prints JSON. See README.md,
# "Performance", and go run ./sync/bench -h.
BENCHFLAGS ?=
bench: build dovecot
	$(GO) run ./sync/bench -satchel bin/satchel $(BENCHFLAGS)

# Sync the built-in sample mail into ./satchel-demo.
demo:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/satchel demo ./satchel-demo

# Run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin satchel-demo
