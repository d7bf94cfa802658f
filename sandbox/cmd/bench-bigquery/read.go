package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/config"
	"github.com/ordermin/ordermin-backfill/internal/cli"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// bigQueryConfig is the job's BigQuery configuration for the sandbox,
// built by internal/cli from config's defaults and the sandbox's settings.
func bigQueryConfig(s *stack.Stack, readAPI config.ReadAPI) bigquery.Config {
	set := s.Settings()
	c := config.Default()
	b := &c.BigQuery
	b.Project, b.Table, b.ReadAPI = set["bigquery.project"], set["bigquery.table"], readAPI
	b.Endpoint, b.StorageEndpoint, b.StoragePlaintext = set["bigquery.endpoint"], set["bigquery.storage_endpoint"], set["bigquery.storage_plaintext"] == "true"
	b.DestinationTable, b.ReadStreams = set["bigquery.destination_table"], 1 // the emulator serves one stream
	return cli.BigQueryConfig(c)
}

func query(s *stack.Stack) string {
	c := bigQueryConfig(s, config.ReadAPIREST)
	return c.SQL()
}

// readAll opens the production source and reads every row.
func readAll(ctx context.Context, s *stack.Stack, readAPI config.ReadAPI) (result, error) {
	res := result{readAPI: string(readAPI)}
	start := time.Now()
	r, err := bigquery.New(bigQueryConfig(s, readAPI), nil).Open(ctx)
	if err != nil {
		return res, err
	}
	defer r.Close()
	opened := time.Now()
	res.path = r.Path()
	vecs := make([]backfill.Vector, len(r.Columns()))
	for {
		n, err := r.NextColumns(vecs, 1000)
		res.rows += int64(n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("after %d rows: %w", res.rows, err)
		}
	}
	end := time.Now()
	res.openSeconds, res.readSeconds, res.totalSeconds = opened.Sub(start).Seconds(), end.Sub(opened).Seconds(), end.Sub(start).Seconds()
	if want := int64(len(stack.MinOrders(s.Orders))) + 1; res.rows != want { // + the NULL user's group
		return res, fmt.Errorf("read %d rows, want %d (columns %v)", res.rows, want, r.Columns())
	}
	return res, nil
}
