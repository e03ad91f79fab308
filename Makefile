# meshtop — see README.md. `make demo` and `make test` do all set-up.
GO        ?= go
BIN       := bin/meshtop
PKGS      := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FREEZE      := github.com/charmbracelet/freeze@v0.2.2

.PHONY: all deps build demo test test-short fuzz lint bench bench-extra bench-serve bench-wal bench-dashboard screenshots golden clean

all: build

## deps: install PostgreSQL 15, pg_cron and contrib from Debian packages if missing
deps:
	@.ci/install-deps

## build: compile bin/meshtop, stamped with the checkout's version and commit
## (`meshtop version`, meshtop_build_info); outside a git checkout set them: make build VERSION=1.2.3 COMMIT=…
# -ldflags rather than Go's VCS stamping alone: that is off under GOFLAGS=-buildvcs=false
# (as on this project's machines) and in git worktrees. Where these are empty the
# binary falls back on what the go command stamped (cli.ReadBuild).
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)
build:
	$(GO) build -ldflags '-X main.version=$(VERSION) -X main.commit=$(COMMIT)' -o $(BIN) ./cmd/meshtop

## demo: run meshtop against a throwaway local PostgreSQL with MeshHook-shaped data and live traffic
demo: deps build
	./$(BIN) demo

## test: every test against real PostgreSQL, plus a short fuzz run of each input parser
test: deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 30m $(PKGS)
	@$(MAKE) --no-print-directory fuzz

## fuzz: a short run (FUZZTIME, default 10s) of every fuzz target
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    if ! $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg > .fuzz.out 2>&1; then \
	      cat .fuzz.out; \
	      if grep -q 'context deadline exceeded' .fuzz.out && ! grep -q 'Failing input written' .fuzz.out; then \
	        echo "fuzz $$pkg $$f: the fuzzing engine timed out waiting for a worker (no failing input); once more"; \
	        $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	      else rm -f .fuzz.out; exit 1; fi; \
	    else tail -n 3 .fuzz.out; fi; \
	  done; done; rm -f .fuzz.out

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

## golden: rewrite the golden files of the screen tests
golden: deps
	$(GO) test ./tui/... -update

## bench: every group (retrieval, refresh scaling, incremental, WAL capture, write impact, footprint, serve, drill-down); rewrites docs/BENCHMARKS.md
bench: deps build
	@.ci/install-deps pg-activity
	$(GO) run ./cmd/meshtop-bench -out docs/BENCHMARKS.md

## bench-extra: the figures outside the default: retrieval and refresh scaling on 10M runs
## (docs/BENCHMARKS-large.md) and write impact at the documented 1-minute schedule (docs/BENCHMARKS-write-1m.md)
bench-extra: deps build
	$(GO) run ./cmd/meshtop-bench -size large -groups retrieval,refresh -out docs/BENCHMARKS-large.md
	$(GO) run ./cmd/meshtop-bench -groups write -refresh-every 1m -pgbench-seconds 60 -out docs/BENCHMARKS-write-1m.md

## bench-wal: only the WAL capture group (issue #26); rewrites docs/BENCHMARKS-wal.md
bench-wal: deps build
	$(GO) run ./cmd/meshtop-bench -groups wal -out docs/BENCHMARKS-wal.md

## bench-dashboard: only the dashboard's footprint beside pg_activity and the drill-down's buffers; rewrites docs/BENCHMARKS-dashboard.md
bench-dashboard: deps build
	@.ci/install-deps pg-activity
	$(GO) run ./cmd/meshtop-bench -groups footprint,drilldown -out docs/BENCHMARKS-dashboard.md

## bench-serve: only the meshtop serve group (20 SSH sessions vs 1, RSS per session, warm scrape vs status --json); rewrites docs/BENCHMARKS-serve.md
bench-serve: deps build
	$(GO) run ./cmd/meshtop-bench -groups serve -out docs/BENCHMARKS-serve.md

## screenshots: regenerate screenshots/*.png from the deterministic demo
screenshots: deps build
	@.ci/install-deps fonts-dejavu-core
	$(GO) run ./cmd/meshtop-shots -out screenshots

clean:
	rm -rf bin
	$(GO) clean -testcache
