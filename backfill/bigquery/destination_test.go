package bigquery

import (
	"context"
	"strings"
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Shards (or runs) that do not share one query job each
// ran theirs WRITE_TRUNCATE into bigquery.destination_table, and the
// table ended up holding the result twice. No two query jobs may write
// one table: each job writes a table named from its job id, WRITE_EMPTY,
// with an expiration.
func TestQueryJobsNeverShareADestinationTable(t *testing.T) {
	t.Parallel()
	schema := &bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "INTEGER"}, {Name: "min_order_id", Type: "INTEGER"}}}
	jobs := startJobs(t, &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon"}, 0, schema)
	for range 2 {
		cfg := Config{Project: "p", Endpoint: jobs.URL(), Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id",
			ShardCount: 1, ReadAPI: ReadREST, DestinationTable: "p.scratch.backfill_result", QueryTimeout: 30 * time.Second}
		r, err := New(cfg, nil).Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	tables := map[string]bool{}
	for _, j := range jobs.Inserted() {
		q := j.Configuration.Query
		if q.DestinationTable == nil {
			continue
		}
		name := q.DestinationTable.DatasetId + "." + q.DestinationTable.TableId
		if q.WriteDisposition == "WRITE_TRUNCATE" || q.WriteDisposition == "WRITE_APPEND" || tables[name] {
			t.Fatalf("query job %s writes %s with %s; another job of these runs writes it too (%v)", j.JobReference.JobId, name, q.WriteDisposition, tables)
		}
		if q.DestinationTable.DatasetId != "scratch" || !strings.HasPrefix(q.DestinationTable.TableId, "backfill_result_") {
			t.Fatalf("job %s writes %s: want a table named from the job in destination_table's dataset", j.JobReference.JobId, name)
		}
		tables[name] = true
	}
	if len(tables) != 2 {
		t.Fatalf("result tables %v; want one per query job", tables)
	}
	expiring := map[string]bool{}
	for _, p := range jobs.Patches() {
		if p.ExpirationTime > time.Now().UnixMilli() {
			expiring[p.TableReference.DatasetId+"."+p.TableReference.TableId] = true
		}
	}
	for name := range tables {
		if !expiring[name] {
			t.Fatalf("result table %s was given no expiration (patches %v)", name, expiring)
		}
	}
}

// A shard counts its rows of the shared result to know how many it must
// read; a table holding the result twice doubled both the count and the
// rows read, which then agreed. The count must see the doubled keys.
func TestAShardSeesADoubledResultTable(t *testing.T) {
	t.Parallel()
	const users, shards = 1000, 2
	_, _, shard := shardedRunCopies(t, users, shards, 2)
	r, err := shard(1).Open(context.Background())
	if err == nil {
		total, _ := r.TotalRows()
		r.Close()
		t.Fatalf("shard 1 opened a doubled result table expecting %d rows: its count agrees with the doubled rows", total)
	}
	if backfill.KindOf(err) != backfill.KindSource || !strings.Contains(err.Error(), "more than once") {
		t.Fatalf("err %v (kind %s): want a source error saying the table holds keys more than once", err, backfill.KindOf(err))
	}
}
