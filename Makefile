# Single source of the release build line: the Dockerfile runs `make build
# OUT=/out/backfill`, and CI should call the same target (or read the
# variables below with `make -s print-build`) instead of repeating the flags.

GO          ?= go
OUT         ?= ./bin/backfill
PKG         := ./cmd/backfill
BUILD_FLAGS := -trimpath -ldflags "-s -w"

.PHONY: build print-build

## build: the backfill binary, cgo on (confluent-kafka-go's bundled librdkafka).
build:
	CGO_ENABLED=1 $(GO) build $(BUILD_FLAGS) -o $(OUT) $(PKG)

## print-build: print the exact build command, for scripts that cannot run make targets.
print-build:
	@echo 'CGO_ENABLED=1 $(GO) build $(BUILD_FLAGS) -o $(OUT) $(PKG)'

# ---------------------------------------------------------------------------
# TODO(lead): add test / demo / bench targets here (e.g. `test: go test ./...`).
# ---------------------------------------------------------------------------
