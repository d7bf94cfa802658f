package ksqldb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
)

// A table query that repartitions commits the stream topic's
// offsets once a record reached its repartition topic, before the record
// reaches the table: the job refuses it rather than trust the stream's
// topic alone.
func TestRepartitioningTableQueryIsRefused(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Repartition, c.RepartitionLag = true, 2*time.Second })
	c := client(t, s.URL(), nil)
	rows := rowsOf(20, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	facts, err := c.Preflight(context.Background(), expectation())
	if err == nil {
		catchUp(t, c, facts, w.produce(w.schemas, rows, nil))
		_, err = c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast)
	}
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "Aggregate-GroupBy-repartition") ||
		!strings.Contains(err.Error(), "topic \"STREAM.ORDER.INSERT\" alone") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
}

// The barrier refuses too, naming the topic, where the offset summary
// lists a repartition topic the preflight did not see.
func TestBarrierRefusesARepartitionTopicInTheSummary(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Repartition = true })
	c := client(t, s.URL(), nil)
	rows := rowsOf(20, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	target := w.produce(w.schemas, rows, nil)
	waitConsumed(t, s, 20)
	facts := ksqldb.Facts{Stream: "stream_order_insert", Table: "table_min_order", Topic: topic, QueryID: "CTAS_TABLE_MIN_ORDER_1"}
	opts := quick
	opts.Stall = 5 * time.Second
	_, err := c.CatchUp(context.Background(), facts, target, opts)
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "_confluent-ksql-default_query_CTAS_TABLE_MIN_ORDER_1-Aggregate-GroupBy-repartition") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
}
