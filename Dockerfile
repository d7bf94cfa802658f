# syntax=docker/dockerfile:1
#
# ordermin-backfill image. The binary is cgo (confluent-kafka-go links its
# bundled static librdkafka against glibc), so it is built on Debian bookworm
# and run on distroless base-debian12 (glibc + CA certificates, no shell).
# For reproducible builds pin both images by digest (@sha256:...) in CI.

FROM golang:1.26.8-bookworm AS build
# Never download another Go toolchain: the image must match go.mod's go line.
ENV GOTOOLCHAIN=local
WORKDIR /src

# Module download layer: rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

# The build line lives in the Makefile (target `build`), the single source of
# its flags: CGO_ENABLED=1 go build -trimpath -ldflags "-s -w".
COPY . .
# The version stamped into the binary (e.g. --build-arg VERSION=$(git describe --tags --always)).
ARG VERSION=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    make build OUT=/out/backfill VERSION="${VERSION}"

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/backfill /backfill
# Fewer glibc malloc arenas: librdkafka frees on its own threads what cgo
# threads allocated, and many arenas let RSS creep with the row count.
ENV MALLOC_ARENA_MAX=2
USER nonroot
ENTRYPOINT ["/backfill"]
CMD ["run"]
