// Command backfill backfills ksqlDB's table_min_order from BigQuery: it
// reads MIN(order_id) per user, writes Avro records in the Confluent wire
// format to the stream's topic and verifies the table with pull queries.
//
// Usage: backfill [run|check|help|version] [flags]. Settings: docs/settings.md;
// exit codes: README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordermin/ordermin-backfill/internal/cli"
)

// main runs the job in a child process of itself (cli.Supervise), so that
// a crash in librdkafka's C code or in Go's runtime still ends with a
// report and exit code 1; the child runs the job (cli.Run).
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if exe, err := os.Executable(); err == nil && !cli.Supervised() {
		code = cli.Supervise(ctx, exe, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	} else {
		// Supervised: the job stops also when its parent dies unannounced.
		jobCtx, cancel := cli.WatchParent(ctx, os.Getenv)
		code = cli.ExitCode(cli.Run(jobCtx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
		cancel()
	}
	stop()
	os.Exit(code)
}
