package bigquery

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

func testCodec(t *testing.T) *backfill.Codec {
	t.Helper()
	c, err := backfill.NewCodec(backfill.Schemas{
		Key:   backfill.RegisteredSchema{Subject: "k", Version: 1, ID: 1, Schema: backfilltest.KsqlKeySchema},
		Value: backfill.RegisteredSchema{Subject: "v", Version: 1, ID: 2, Schema: backfilltest.KsqlValueSchema},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func intSchema(names ...string) *bq.TableSchema {
	s := &bq.TableSchema{}
	for _, n := range names {
		s.Fields = append(s.Fields, &bq.TableFieldSchema{Name: n, Type: "INTEGER"})
	}
	return s
}

// customRun runs the pipeline over a custom query, read over REST from
// the jobs double, which answers as BigQuery would: users 1..3, each with
// orders 1000u+1 and 1000u, once per order unless the query groups by
// user. It returns the report, the queries the jobs ran, the records
// produced and the run's error.
func customRun(t *testing.T, query string, dryRun *bq.TableSchema) (*backfill.Report, []string, *backfilltest.Producer, error) {
	t.Helper()
	jobs := startJobs(t, &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon"}, 0, dryRun)
	jobs.DryRunSchema = func(sql string) *bq.TableSchema {
		if sql == strings.TrimSpace(query) {
			return dryRun
		}
		return nil
	}
	jobs.Answer = func(sql string) (*bq.TableSchema, []*bq.TableRow, bool) {
		grouped := strings.Contains(sql, "GROUP BY `user_id`") && strings.Contains(sql, "MIN(`min_order_id`)")
		var rows []*bq.TableRow
		for u := 1; u <= 3; u++ {
			for _, o := range []int{1000*u + 1, 1000 * u} {
				if grouped && o%1000 != 0 {
					continue
				}
				rows = append(rows, &bq.TableRow{F: []*bq.TableCell{{V: strconv.Itoa(u)}, {V: strconv.Itoa(o)}}})
			}
		}
		return intSchema("user_id", "min_order_id"), rows, true
	}
	prod := &backfilltest.Producer{Keep: true}
	p := backfill.Pipeline{
		Source: New(Config{Project: "p", Endpoint: jobs.URL(), Query: query, KeyColumn: "user_id", ShardCount: 1,
			ReadAPI: ReadREST, QueryTimeout: 30 * time.Second}, nil),
		Codec: testCodec(t), Mapping: backfill.Mapping{KeyColumn: "user_id"}, Producer: prod,
		Workers: 1, BatchSize: 10, FlushTimeout: time.Second,
	}
	var rep backfill.Report
	err := p.Run(context.Background(), &rep)
	var ran []string
	for _, j := range jobs.Inserted() {
		ran = append(ran, j.Configuration.Query.Query)
	}
	return &rep, ran, prod, err
}

// A custom query that returns a user more than once
// (no GROUP BY) sent every copy. The job must run it reduced to one row
// per user carrying the minimum, whatever the query, and BigQuery then
// enforces it.
func TestCustomQueryIsReducedToOneRowPerKey(t *testing.T) {
	t.Parallel()
	const custom = "SELECT user_id, order_id AS min_order_id FROM `p.d.orders` -- every order, no GROUP BY"
	rep, ran, prod, err := customRun(t, custom, intSchema("user_id", "min_order_id"))
	if err != nil {
		t.Fatal(err)
	}
	sent := map[int64]int{}
	for _, r := range prod.Records() {
		sent[int64(r.Key[5])/2]++
	}
	for u, n := range sent {
		if n != 1 {
			t.Fatalf("user %d sent %d times (%d records); the query job ran %q", u, n, rep.RecordsProduced, ran)
		}
	}
	want := "SELECT `user_id`, MIN(`min_order_id`) AS `min_order_id` FROM (\n" + custom + "\n) GROUP BY `user_id`"
	if len(ran) != 1 || ran[0] != want {
		t.Fatalf("query jobs ran %q, want %q", ran, want)
	}
}

// Through the source, MIN(order_id) AS min_order_id and
// MAX(order_id) AS order_id are two candidates for ORDER_ID; the run
// stops with a contract error naming both before any query job runs.
func TestCustomQueryWithTwoCandidatesIsRefusedBeforeItRuns(t *testing.T) {
	t.Parallel()
	const custom = "SELECT user_id, MIN(order_id) AS min_order_id, MAX(order_id) AS order_id FROM `p.d.orders` GROUP BY user_id"
	_, ran, _, err := customRun(t, custom, intSchema("user_id", "min_order_id", "order_id"))
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), `"min_order_id" and "order_id"`) {
		t.Fatalf("err %v (kind %s): want a contract error naming both columns", err, backfill.KindOf(err))
	}
	if len(ran) != 0 {
		t.Fatalf("query jobs ran %q before the mapping was checked", ran)
	}
}

// The wrapper keeps the other value fields from a row holding the
// minimum, and survives a custom query ending in a "--" comment.
func TestKeyedSQLShapes(t *testing.T) {
	t.Parallel()
	c := Config{Query: "SELECT u, o AS min_order_id, note FROM t; \n", KeyColumn: "u", ShardCount: 3, ShardIndex: 1, ReadAPI: ReadStorage,
		reduce: &backfill.Projection{Key: "u", Min: "min_order_id", Carry: []string{"note"}}}
	want := "SELECT *, IFNULL(ABS(MOD(`u`, 3)), 0) AS _backfill_shard FROM (\n" +
		"SELECT `u`, MIN(`min_order_id`) AS `min_order_id`, " +
		"ARRAY_AGG(IF(`min_order_id` IS NULL, NULL, STRUCT(`note` AS v)) IGNORE NULLS ORDER BY `min_order_id` LIMIT 1)[SAFE_OFFSET(0)].v AS `note` FROM (\n" +
		"SELECT u, o AS min_order_id, note FROM t\n) GROUP BY `u`\n)"
	if got := c.SQL(); got != want {
		t.Fatalf("SQL\n%s\nwant\n%s", got, want)
	}
	c.Query, c.reduce.Carry = "SELECT u, o AS min_order_id FROM t -- all orders", nil
	if got := c.baseSQL(); !strings.Contains(got, "-- all orders\n) GROUP BY `u`") {
		t.Fatalf("a trailing comment swallows the closing parenthesis: %q", got)
	}
}

// The default query over a table whose key is NUMERIC
// ran (and was billed) before the type check refused its result. The
// table's schema is checked before any query job starts.
func TestANumericKeyIsRefusedBeforeTheQueryRuns(t *testing.T) {
	t.Parallel()
	schema := &bq.TableSchema{Fields: []*bq.TableFieldSchema{{Name: "user_id", Type: "NUMERIC"}, {Name: "order_id", Type: "INTEGER"}}}
	jobs := startJobs(t, &bq.TableReference{ProjectId: "p", DatasetId: "d", TableId: "anon"}, 0, schema)
	p := backfill.Pipeline{
		Source: New(Config{Project: "p", Endpoint: jobs.URL(), Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id",
			ShardCount: 1, ReadAPI: ReadREST, QueryTimeout: 30 * time.Second}, nil),
		Codec: testCodec(t), Mapping: backfill.Mapping{KeyColumn: "user_id"}, Producer: &backfilltest.Producer{},
		Workers: 1, BatchSize: 10, FlushTimeout: time.Second,
	}
	var rep backfill.Report
	err := p.Run(context.Background(), &rep)
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "NUMERIC") {
		t.Fatalf("err %v (kind %s): want a contract error naming the NUMERIC key", err, backfill.KindOf(err))
	}
	if n := jobs.Created(); n != 0 {
		t.Fatalf("%d query jobs ran (and were billed) before the key's type was refused", n)
	}
}
