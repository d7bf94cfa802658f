// Command backfill backfills ksqlDB's table_min_order from BigQuery: it
// reads MIN(order_id) per user, writes Avro records in the Confluent wire
// format to the stream's topic and verifies the table with pull queries.
//
// Usage: backfill [run|check|version] [flags]. See README.md for settings
// and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordermin/ordermin-backfill/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.ExitCode(err))
}
