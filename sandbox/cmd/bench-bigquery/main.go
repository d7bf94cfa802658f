// Command bench-bigquery measures the BigQuery read path of the backfill
// against the BigQuery emulator: the production source (backfill/bigquery)
// reads the default query's result with bigquery.read_api=storage and
// bigquery.read_api=rest, and the command prints rows/s for each and the
// path each read used. The emulator answers every read from SQLite on
// this machine, so only the relative figures mean anything; make bench's
// read-storage and read-iterator scenarios measure the Storage Read API
// reader against BigQuery's own framing.
//
// It is a separate command from cmd/bench because the emulator needs cgo
// with clang: build it with CC=clang CXX=clang++.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ordermin/ordermin-backfill/config"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// result is one read of the whole query result.
type result struct {
	readAPI      string // what was asked for
	path         string // what the reader used
	rows         int64
	openSeconds  float64 // running the query job until the first page
	readSeconds  float64 // iterating every row after Open
	totalSeconds float64
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench-bigquery", flag.ContinueOnError)
	fs.SetOutput(stderr)
	users := fs.Int("users", 50000, "distinct users in the emulator's orders table (rows of the query result)")
	perUser := fs.Int("orders-per-user", 4, "at most this many orders per user")
	reps := fs.Int("reps", 2, "reads per read_api, alternating storage and rest")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(stderr, "bench-bigquery: seeding the emulator with %d users ...\n", *users)
	seedStart := time.Now()
	s, err := stack.Start(ctx, stack.Options{Users: *users, OrdersPerUser: *perUser})
	if err != nil {
		fmt.Fprintf(stderr, "bench-bigquery: starting the sandbox: %v\n", err)
		return 1
	}
	defer s.Close()
	seedSeconds := time.Since(seedStart).Seconds()

	var results []result
	for i := range *reps {
		for _, api := range []config.ReadAPI{config.ReadAPIStorage, config.ReadAPIREST} {
			r, err := readAll(ctx, s, api)
			if err != nil {
				fmt.Fprintf(stderr, "bench-bigquery: read_api=%s: %v\n", api, err)
				return 1
			}
			fmt.Fprintf(stderr, "bench-bigquery: query read %d: read_api=%s path=%s rows=%d open=%.2fs read=%.2fs\n", i+1, api, r.path, r.rows, r.openSeconds, r.readSeconds)
			results = append(results, r)
		}
	}

	fmt.Fprintf(stdout, "machine: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintf(stdout, "emulator: goccy/bigquery-emulator in process, %d order rows for %d users, seeded in %.1fs; query: %s\n",
		len(s.Orders), *users, seedSeconds, query(s))
	fmt.Fprintln(stdout, "figures are relative: the emulator serves every page from SQLite on this machine")
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "the job's read path: backfill/bigquery (the production source) running the default query, read to the end;")
	fmt.Fprintln(stdout, "query/open s runs the query job and opens its result (rest: the first page; storage: the read session), read s reads the rest")
	printResults(stdout, results)
	for _, r := range results {
		if r.readAPI != r.path {
			fmt.Fprintf(stdout, "read_api=%s read through %s: the figures do not compare the two paths\n", r.readAPI, r.path)
			return 1
		}
	}
	fmt.Fprintln(stdout, "the emulator serves the Storage Read API through one stream, a whole IPC stream per response,")
	fmt.Fprintln(stdout, "from a query that writes bigquery.destination_table: see make bench's read scenario for the direct")
	fmt.Fprintln(stdout, "reader against BigQuery's own framing")
	return 0
}

func printResults(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "read_api\tpath used\trows\tquery/open s\tread s\ttotal s\trows/s (total)\t")
	best := map[string]float64{}
	for _, r := range results {
		rps := float64(r.rows) / r.totalSeconds
		best[r.readAPI] = max(best[r.readAPI], rps)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.0f\t\n", r.readAPI, r.path, r.rows, r.openSeconds, r.readSeconds, r.totalSeconds, rps)
	}
	tw.Flush()
	storage, rest := string(config.ReadAPIStorage), string(config.ReadAPIREST)
	if best[rest] > 0 {
		fmt.Fprintf(w, "   best rows/s, read_api=%s vs %s: %.2fx\n", storage, rest, best[storage]/best[rest])
	}
}
