package bigquery

import (
	"context"
	"strings"
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

// `backfill check` runs the query as a dry run: it
// reports the result's columns as the mapping binds them and the bytes
// the query will process (what on-demand pricing bills), and starts no
// job.
func TestCheckIsADryRun(t *testing.T) {
	t.Parallel()
	schema := &bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "INTEGER"}, {Name: "order_id", Type: "INTEGER"}}}
	jobs := startJobs(t, &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon"}, 0, schema)
	jobs.Location, jobs.DryRunBytes = "europe-west3", 123_456_789
	jobs.DryRunSchema = func(string) *bq.TableSchema { return intSchema("user_id", "min_order_id") }
	p := backfill.Pipeline{
		Source: New(Config{Project: "p", Endpoint: jobs.URL(), Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id",
			ShardCount: 1, ReadAPI: ReadStorage, ReadSessionTimeout: 5 * time.Second, QueryTimeout: 30 * time.Second}, nil),
		Codec: testCodec(t), Mapping: backfill.Mapping{KeyColumn: "user_id"}, Producer: &backfilltest.Producer{},
	}
	c, err := p.CheckSource(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c == nil || c.BytesProcessed != 123_456_789 || c.Location != "europe-west3" || strings.Join(c.Columns, ",") != "user_id INT64,min_order_id INT64" {
		t.Fatalf("check %+v: want the dry run's bytes, the location and the columns", c)
	}
	if jobs.Created() != 0 || jobs.DryRuns() != 1 {
		t.Fatalf("%d jobs, %d dry runs: want one dry run and no job", jobs.Created(), jobs.DryRuns())
	}

	// A NUMERIC key is refused by the check, before anything is billed.
	numeric := startJobs(t, &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon"}, 0,
		&bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "NUMERIC"}, {Name: "order_id", Type: "INTEGER"}}})
	p.Source.(*Source).cfg.Endpoint = numeric.URL()
	if _, err := p.CheckSource(context.Background()); backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "NUMERIC") {
		t.Fatalf("err %v (kind %s): want a contract error naming the NUMERIC key", err, backfill.KindOf(err))
	}
	if numeric.DryRuns() != 0 || numeric.Created() != 0 {
		t.Fatalf("%d dry runs, %d jobs after the key was refused", numeric.DryRuns(), numeric.Created())
	}
}
