# Single source of the release build line: the Dockerfile runs `make build
# OUT=/out/backfill`, and CI should call the same target (or read the
# variables below with `make -s print-build`) instead of repeating the flags.

GO          ?= go
OUT         ?= ./bin/backfill
PKG         := ./cmd/backfill
# VERSION is stamped into the binary (backfill version); the Docker build,
# which has no .git, passes it as a build argument.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
BUILD_FLAGS := -trimpath -ldflags "-s -w -X github.com/ordermin/ordermin-backfill/internal/cli.Version=$(VERSION)"
# The job's binary needs no clang: the system C compiler builds it (in the
# Docker build image too). Only the tests' BigQuery emulator needs clang.
BUILD_CC    ?= cc

.PHONY: build print-build check-version

## build: the backfill binary, cgo on (confluent-kafka-go's bundled librdkafka).
build:
	CC=$(BUILD_CC) CGO_ENABLED=1 $(GO) build $(BUILD_FLAGS) -o $(OUT) $(PKG)

## check-version: the release binary reports the stamped version, not dev.
check-version: build
	@v=$$($(OUT) --version) && echo "$$v" && case "$$v" in *" dev "*|*" dev") echo "the release build reports version dev"; exit 1;; esac

## print-build: print the exact build command, for scripts that cannot run make targets.
print-build:
	@echo 'CC=$(BUILD_CC) CGO_ENABLED=1 $(GO) build $(BUILD_FLAGS) -o $(OUT) $(PKG)'

# ---------------------------------------------------------------------------
# Development targets.
# ---------------------------------------------------------------------------

# Everything is built with clang: the BigQuery emulator (tests and sandbox
# only) compiles with nothing else, and one compiler keeps the build cache warm.
export CC  := clang
export CXX := clang++

# DEV_CGO compiles the emulator's C and C++ (go-zetasql) without optimisation
# or debug info: a cold build takes minutes instead of a quarter of an hour.
# -fno-exceptions takes a sixth off the longest C++ file: ZetaSQL, Abseil and
# the bundled protobuf neither throw nor catch (the code compiles without
# exceptions), so an exception from the C++ library ends the process either way.
# It also compiles the Go packages that only the test rigs link (the
# emulator's dependencies and franz-go, EMULATOR_GO_PKGS) without inlining
# (-gcflags=-l), which takes a third to a half off their compile time; no
# package of cmd/backfill matches them (sandbox/internal/devbuild checks it),
# so the job's code builds as it ships.
# The flags are part of Go's build-cache key, so every command that builds the
# emulator (the sandbox module's vet and staticcheck, the end-to-end tests,
# demo, serve, bench-bigquery) runs with the same ones and the emulator
# compiles once. `make build` (the Dockerfile's release binary), the unit and
# component tests and cmd/bench keep Go's defaults (-O2 -g).
EMULATOR_GO_PKGS := github.com/goccy/go-zetasql/... github.com/goccy/go-zetasqlite/... \
	github.com/goccy/bigquery-emulator/... github.com/goccy/go-yaml/... \
	github.com/envoyproxy/... github.com/cncf/xds/... github.com/dop251/goja/... \
	github.com/apache/arrow/go/v10/... github.com/apache/thrift/... github.com/parquet-go/... \
	gonum.org/v1/gonum/... cloud.google.com/go/storage/... cloud.google.com/go/monitoring/... \
	github.com/andybalholm/brotli/... go.opentelemetry.io/otel/sdk/... github.com/twmb/franz-go/...
DEV_CGO := CGO_CFLAGS="-O0 -g0" CGO_CXXFLAGS="-O0 -g0 -fno-exceptions" \
	GOFLAGS="$(strip $(GOFLAGS) $(foreach p,$(EMULATOR_GO_PKGS),-gcflags=$(p)=-l))"
# The sandbox binary that demo and serve run is thrown away: linking it without
# a symbol table or DWARF takes 6 of its 14 seconds off a cold first run, and
# gold (when installed) another 3. Panics still print function names and lines
# (they come from the pclntab).
SANDBOX_LDFLAGS := -ldflags="-s -w$(if $(shell command -v ld.gold 2>/dev/null), -extldflags=-fuse-ld=gold)"
COLD_BUILD_NOTE := sandbox: building; the first run compiles the BigQuery emulator's C++ (4 to 6 minutes on 2 cores, see docs/performance.md), later runs take seconds

STATICCHECK ?= $(shell go env GOPATH)/bin/staticcheck
# The sandbox module (sandbox/, its own go.mod) holds the test rigs: the
# sandbox stack, the end-to-end tests, the benches, the fakes that need
# outside modules and the component tests against kfake. Its targets run there.
SANDBOX     := cd sandbox &&
E2E         := ./internal/e2e/
# The sandbox's packages that link the emulator (run without -race, which
# would rebuild its C++).
EMULATOR_PKGS := -e /internal/e2e -e /internal/stack -e /cmd/sandbox -e /cmd/bench-bigquery
SANDBOX_UNIT_PKGS = $(shell $(SANDBOX) $(GO) list ./... | grep -v $(EMULATOR_PKGS))

.PHONY: help deps-clang deps-test deps lint lint-job lint-sandbox test test-fast test-job test-unit test-e2e test-scale demo serve bench bench-quick

## help: list the targets with what each does.
help:
	@awk '/^## / { t = substr($$0, 4); \
	  if (match(t, /^[a-z-]+:/)) { printf "  %-16s%s\n", substr(t, 1, RLENGTH - 1), substr(t, RLENGTH + 1); in_target = 1; next } \
	  if (in_target) { printf "  %-16s %s\n", "", t; next } } { in_target = 0 }' $(MAKEFILE_LIST)

# apt_install installs the Debian packages named by its argument that are
# missing (checked by command name), without recommended packages.
apt_install = missing=""; for p in $(1); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

## deps-clang: install clang (Debian) when missing: the emulator needs it.
deps-clang:
	@$(call apt_install,clang)

## deps-test: clang, kcat (Debian) and staticcheck when missing.
deps-test:
	@$(call apt_install,clang kcat)
	@[ -x "$(STATICCHECK)" ] || CGO_ENABLED=0 $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2

## deps: everything the development targets use.
deps: deps-test

## lint: gofmt, go mod tidy, go vet and staticcheck must be clean in both modules.
lint: lint-job lint-sandbox

## lint-job: the job's module only (no clang): gofmt, go mod tidy -diff, vet, staticcheck.
lint-job:
	@[ -x "$(STATICCHECK)" ] || CGO_ENABLED=0 $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	CC=$(BUILD_CC) $(GO) vet ./...
	CC=$(BUILD_CC) $(STATICCHECK) ./...

## lint-sandbox: the sandbox module (its vet builds the emulator: clang).
lint-sandbox: deps-test
	$(SANDBOX) $(GO) mod tidy -diff
	$(SANDBOX) $(DEV_CGO) $(GO) vet ./...
	$(SANDBOX) $(DEV_CGO) $(STATICCHECK) ./...

## test: the whole suite. The fast lane first (lint and tests of the job's module, about a minute),
## then the sandbox's lint, the release build (the Dockerfile's flags), the component tests with -race
## and the end-to-end tests.
test: test-fast lint-sandbox build check-version test-unit test-e2e

## test-fast: lint and -race tests of the job's module; needs neither clang nor kcat.
test-fast: lint-job test-job

## test-job: the job module's tests with -race (no clang, no kcat).
test-job:
	CC=$(BUILD_CC) $(GO) test -race -count=1 ./...

## test-unit: the job module's tests and the sandbox's component tests, with -race (no clang, no kcat).
test-unit: test-job
	$(SANDBOX) CC=$(BUILD_CC) $(GO) test -race -count=1 $(SANDBOX_UNIT_PKGS)

## test-scale: the exactly-once matrix's interrupted-and-rerun sequence at 200,000 users (minutes; not part of test).
test-scale: deps-test
	$(SANDBOX) BACKFILL_E2E_SCALE=1 $(DEV_CGO) $(GO) test -count=1 -timeout 30m -run 'TestScaleInterruptedRerun' -v $(E2E)

## test-e2e: the real binary against the sandbox stack (no -race: it would rebuild the emulator's C++).
test-e2e: deps-test
	$(SANDBOX) $(DEV_CGO) $(GO) test -count=1 -timeout 30m $(E2E)

# KSQL_VERSION picks the ksqlDB release the sandbox's double answers as (make demo KSQL_VERSION=0.23.1).
KSQL_FLAGS = $(if $(KSQL_VERSION),-ksql-version=$(KSQL_VERSION))

## demo: run the job end to end on the embedded sandbox stack (sandbox flags in ARGS, e.g. ARGS="-users=20000 -ksql-rate=5000"; KSQL_VERSION=0.23.1 answers as that ksqlDB).
demo: deps-clang
	@echo "$(COLD_BUILD_NOTE)"
	$(SANDBOX) $(DEV_CGO) $(GO) run $(SANDBOX_LDFLAGS) ./cmd/sandbox $(KSQL_FLAGS) $(ARGS)

## serve: keep the sandbox stack running for the real binary, kcat and curl.
serve: deps-clang
	@echo "$(COLD_BUILD_NOTE)"
	$(SANDBOX) $(DEV_CGO) $(GO) run $(SANDBOX_LDFLAGS) ./cmd/sandbox serve $(KSQL_FLAGS) $(ARGS)

## bench: rows/s, CPU s and peak RSS of the produce limit, the job pipeline and a seed-like baseline
## (1 M and 10 M rows, one process each), then the BigQuery read path on the emulator; see docs/performance.md.
bench: deps-clang
	$(SANDBOX) $(GO) run ./cmd/bench
	$(SANDBOX) $(DEV_CGO) $(GO) run ./cmd/bench-bigquery

## bench-quick: the same at 100 k rows, a smoke run.
bench-quick: deps-clang
	$(SANDBOX) $(GO) run ./cmd/bench -quick
	$(SANDBOX) $(DEV_CGO) $(GO) run ./cmd/bench-bigquery -users=5000 -reps=1
