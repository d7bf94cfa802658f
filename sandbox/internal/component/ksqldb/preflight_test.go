package ksqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
)

func TestPreflightReportsEachMismatchNamingBothSides(t *testing.T) {
	w := newWorld(t, 3)
	for name, tc := range map[string]struct {
		fake   func(*ksqlfake.Config)
		expect func(*ksqldb.Expectation)
		want   []string
	}{
		"wrong topic": {nil, func(e *ksqldb.Expectation) { e.Topic = "STREAM.ORDER.INSERT.V2" },
			[]string{`reads topic "STREAM.ORDER.INSERT"`, `writes to topic "STREAM.ORDER.INSERT.V2"`}},
		"JSON formats": {func(c *ksqlfake.Config) { c.KeyFormat, c.ValueFormat = "JSON", "JSON" }, nil,
			[]string{"key_format JSON", "value_format JSON", "key_format='AVRO'"}},
		"missing table": {func(c *ksqlfake.Config) { c.NoTable = true }, nil,
			[]string{"table table_min_order does not exist", "Could not find STREAM/TABLE 'table_min_order'"}},
		"table not fed by the stream": {func(c *ksqlfake.Config) { c.TableSource = "stg_order" }, nil,
			[]string{"table `table_min_order` is not fed by stream `stream_order_insert`", "FROM `stg_order`"}},
		"query not running": {func(c *ksqlfake.Config) { c.QueryState = "ERROR" }, nil,
			[]string{"CTAS_TABLE_MIN_ORDER_1", "is ERROR, not RUNNING"}},
		"wrong partition count": {nil, func(e *ksqldb.Expectation) { e.Partitions = 1 },
			[]string{"ksqlDB sees 3 partitions", "gives the job 1"}},
		"wrong subjects": {nil, func(e *ksqldb.Expectation) { e.KeySubject, e.ValueSubject = "orders-key", "orders-value" },
			[]string{`subject "STREAM.ORDER.INSERT-key"`, `subject "orders-key"`, `subject "STREAM.ORDER.INSERT-value"`, `subject "orders-value"`}},
		"key column": {nil, func(e *ksqldb.Expectation) { e.KeyColumn = "USER_ID" },
			[]string{"key column is ACCOUNT_ID", "expects key column USER_ID"}},
		"value column": {nil, func(e *ksqldb.Expectation) { e.ValueColumn = "FIRST_ORDER_ID" },
			[]string{"no value column FIRST_ORDER_ID", "ORDER_ID BIGINT"}},
		"key schema id": {func(c *ksqlfake.Config) { c.StreamKeySchemaID = 7 }, func(e *ksqldb.Expectation) { e.KeySchemaID = 1 },
			[]string{"KEY_SCHEMA_ID=7", "writes key schema id 1", `"id:7"`}},
		"string key": {func(c *ksqlfake.Config) { c.KeyType = "STRING" }, nil,
			[]string{"key column ACCOUNT_ID is STRING"}},
		"missing stream": {func(c *ksqlfake.Config) { c.Stream, c.TableSource = "other_stream", "other_stream" }, nil,
			[]string{"stream stream_order_insert does not exist", "`stream_order_insert` and `STREAM_ORDER_INSERT`"}},
	} {
		s := w.ksql(tc.fake)
		want := expectation()
		if tc.expect != nil {
			tc.expect(&want)
		}
		_, err := client(t, s.URL(), nil).Preflight(context.Background(), want)
		if backfill.KindOf(err) != backfill.KindContract {
			t.Errorf("%s: want a contract error, got kind %v: %v", name, backfill.KindOf(err), err)
			continue
		}
		for _, part := range tc.want {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("%s: error lacks %q:\n%v", name, part, err)
			}
		}
	}
}

func TestPreflightQuotesNames(t *testing.T) {
	w := newWorld(t, 3)
	// Created with backquotes: lower case and hostile characters survive.
	hostile := w.ksql(func(c *ksqlfake.Config) {
		c.Stream, c.Table, c.TableSource = "orders `v2`; DROP STREAM x", "min order", "orders `v2`; DROP STREAM x"
	})
	c := client(t, hostile.URL(), func(c *ksqldb.Config) { c.Stream, c.Table = "orders `v2`; DROP STREAM x", "min order" })
	facts, err := c.Preflight(context.Background(), expectation())
	if err != nil {
		t.Fatal(err)
	}
	if facts.Stream != "orders `v2`; DROP STREAM x" || facts.Table != "min order" {
		t.Fatalf("facts %+v", facts)
	}
	rows := rowsOf(5, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return 10 })
	w.produce(w.schemas, rows, nil)
	if _, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast); err != nil {
		t.Fatalf("pull queries on a hostile table name: %v", err)
	}

	// Created without backquotes: stored upper-cased; the configured
	// lower-case name is found there.
	upper := w.ksql(func(c *ksqlfake.Config) { c.Stream, c.Table = "STREAM_ORDER_INSERT", "TABLE_MIN_ORDER" })
	facts, err = client(t, upper.URL(), nil).Preflight(context.Background(), expectation())
	if err != nil || facts.Stream != "STREAM_ORDER_INSERT" || facts.Table != "TABLE_MIN_ORDER" {
		t.Fatalf("upper-cased names: %+v %v", facts, err)
	}
	// A name configured in backquotes is used exactly.
	_, err = client(t, upper.URL(), func(c *ksqldb.Config) { c.Stream = "`stream_order_insert`" }).Preflight(context.Background(), expectation())
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "tried `stream_order_insert`;") {
		t.Fatalf("exact name: %v", err)
	}
}

func TestPreflightCredentialsAndReachability(t *testing.T) {
	const secret = "correct horse battery staple"
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Username, c.Password = "job", secret })
	_, err := client(t, s.URL(), func(c *ksqldb.Config) { c.Username, c.Password = "job", "wrong "+secret }).Preflight(context.Background(), expectation())
	if backfill.KindOf(err) != backfill.KindConfig || strings.Contains(err.Error(), secret) {
		t.Fatalf("bad password: kind %v: %v", backfill.KindOf(err), err)
	}
	if _, err := client(t, s.URL(), func(c *ksqldb.Config) { c.Username, c.Password = "job", secret }).Preflight(context.Background(), expectation()); err != nil {
		t.Fatal(err)
	}
	url := s.URL()
	s.Close()
	_, err = client(t, url, func(c *ksqldb.Config) { c.Retries = 1 }).Preflight(context.Background(), expectation())
	if backfill.KindOf(err) != backfill.KindUnavailable {
		t.Fatalf("closed server: kind %v: %v", backfill.KindOf(err), err)
	}
}
