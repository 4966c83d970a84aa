# satchel's build, test and demo entry points. See README.md.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build test vet demo dovecot fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/satchel ./cmd/satchel

# The whole suite, with the race detector, against a real Dovecot.
test: dovecot vet
	$(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

# Dovecot is what the tests talk to. As root, install it if missing; as
# anyone else, the Dovecot tests skip loudly (SATCHEL_REQUIRE_DOVECOT=1
# makes that a failure).
dovecot:
	@if ! command -v doveadm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing dovecot-imapd for the tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null; \
	  else \
	    echo "*** doveadm not found: the Dovecot tests will SKIP. Install dovecot-imapd (Debian/Ubuntu) to run them. ***"; \
	  fi; \
	fi

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
