// Command sandbox runs the backfill end to end on one machine, with no
// outside service: a kfake Kafka cluster, the BigQuery emulator seeded with
// a synthetic orders table, and Schema Registry and ksqlDB doubles holding
// the first-order pipeline's stream and table.
//
//	go run ./cmd/sandbox          # start the stack, run the real job with verification, print its report
//	go run ./cmd/sandbox serve    # keep the stack up and print its endpoints and a config file
//
// It is a development tool: the job's binary (cmd/backfill) never links it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	// Imported here, where it sorts first, only to build sooner: go build
	// schedules packages in the order of a depth-first walk of the imports,
	// and ZetaSQL's C++ (the BigQuery emulator's SQL engine) holds the
	// longest step of a cold build, one translation unit of about four
	// minutes on one core. Reached through the emulator alone, it started
	// after three minutes of other packages; see docs/performance.md.
	_ "github.com/goccy/go-zetasql"

	"github.com/ordermin/ordermin-backfill/internal/cli"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	mode := "demo"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "demo") {
		mode, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o stack.Options
	fs.IntVar(&o.Users, "users", 5000, "distinct users in the orders table")
	fs.IntVar(&o.OrdersPerUser, "orders-per-user", 4, "at most this many orders per user")
	fs.IntVar(&o.NullUsers, "null-users", 3, "orders with a NULL user (skipped by the job)")
	partitions := fs.Int("partitions", 3, "partitions of the stream's topic")
	fs.DurationVar(&o.KsqlLag, "ksql-lag", 500*time.Millisecond, "how long the ksqlDB double takes to process a record it fetched")
	fs.IntVar(&o.KsqlRate, "ksql-rate", 0, "records a second the ksqlDB double's table query aggregates (0: unlimited)")
	fs.DurationVar(&o.KsqlCommitInterval, "ksql-commit-interval", 2*time.Second, "how often the ksqlDB double's table query commits its offsets (ksqlDB's commit.interval.ms)")
	fs.StringVar(&o.KsqlVersion, "ksql-version", "0.29.0", "the ksqlDB release the double answers as: 0.15.0 and later, or Confluent Platform 6.2 to 8.x (e.g. 0.23.1, 7.4.0)")
	fs.BoolVar(&o.KsqlTLS, "ksql-tls", false, "serve ksqlDB over https with HTTP/2 offered by ALPN, as ksqlDB's TLS listener does")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := ksqlfake.ProfileFor(o.KsqlVersion); err != nil {
		fmt.Fprintln(stderr, "sandbox: -ksql-version:", err)
		return 2
	}
	o.Partitions = int32(*partitions)

	fmt.Fprintf(stderr, "sandbox: starting kfake, the BigQuery emulator (%d users), Schema Registry and ksqlDB doubles...\n", o.Users)
	s, err := stack.Start(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "sandbox:", err)
		return 1
	}
	defer s.Close()
	if mode == "serve" {
		return serve(ctx, s, stdout, stderr)
	}
	fmt.Fprintln(stderr, "sandbox: running the backfill job against it (report on stdout)...")
	jobArgs := append([]string{"run"}, s.Args()...)
	err = cli.Run(ctx, jobArgs, nil, stdout, stderr)
	code := cli.ExitCode(err)
	if err == nil {
		fmt.Fprintf(stderr, "sandbox: success: %d users backfilled and verified in ksqlDB's table_min_order\n", len(s.Expected()))
	} else {
		fmt.Fprintf(stderr, "sandbox: the job failed with exit code %d\n", code)
	}
	return code
}

// serve keeps the stack up until ctx ends.
func serve(ctx context.Context, s *stack.Stack, stdout, stderr io.Writer) int {
	f, err := os.CreateTemp("", "backfill-sandbox-*.yaml")
	if err != nil {
		fmt.Fprintln(stderr, "sandbox:", err)
		return 1
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(s.ConfigYAML()); err != nil {
		fmt.Fprintln(stderr, "sandbox:", err)
		return 1
	}
	f.Close()
	st := s.Settings()
	fmt.Fprintf(stdout, `Sandbox running (Ctrl-C stops it and removes the config file).

  Kafka (kfake)        %s   topic %s, %d partitions
  BigQuery emulator    %s   (Storage Read API gRPC %s), table %s
  Schema Registry      %s
  ksqlDB %-13s %s

Config file: %s
%s
Try (from the repository's root):
%s`,
		st["kafka.brokers"], stack.Topic, s.Options.Partitions, st["bigquery.endpoint"], st["bigquery.storage_endpoint"], st["bigquery.table"],
		st["schema_registry.url"], s.KsqlDB.Profile().Version, st["ksqldb.url"], f.Name(), s.ConfigYAML(), stack.FormatTryCommands(s.TryCommands(f.Name())))
	<-ctx.Done()
	fmt.Fprintln(stderr, "sandbox: stopping")
	return 0
}
