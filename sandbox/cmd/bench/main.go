// Command bench measures the backfill's throughput, CPU and peak memory:
// the raw produce limit, the job's pipeline, and a seed-like
// one-record-at-a-time baseline, each in its own child process, against one
// kfake broker that runs in the bench's own (parent) process. It is never
// part of the job's binary. See docs/performance.md.
package main

import (
	"os"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/bench"
)

func main() { os.Exit(bench.Main(os.Args[1:], os.Stdout, os.Stderr)) }
