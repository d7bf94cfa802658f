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

// quick are barrier options for a barrier expected to give up.
var quick = ksqldb.CatchUpOptions{Stage: "in a test", Poll: 20 * time.Millisecond, Stall: 300 * time.Millisecond}

// 0.15 answers a Kafka failure while reading the query's
// offsets with queryOffsetSummaries [] and a warning; that is an outage to
// wait out, not a table without a query (exit 3).
func TestCatchUpWaitsOutKafkaWarningsOn015(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.Version = "0.15.0" })
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(30, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	target := w.produce(w.schemas, rows, nil)
	s.FailOffsets(3)
	catchUp(t, c, facts, target)

	s.FailOffsets(1 << 30)
	res, err := c.CatchUp(context.Background(), facts, target, quick)
	if backfill.KindOf(err) != backfill.KindUnavailable || !strings.Contains(err.Error(), "Error from Kafka: Failed to list Kafka consumer groups offsets") || res.Status != "unreachable" {
		t.Fatalf("a lasting Kafka failure: status %q, kind %v: %v", res.Status, backfill.KindOf(err), err)
	}
}

// A server principal without DESCRIBE on the query's group is
// a permission to grant, named as such at once: on 0.15 a warning, from
// 0.16 an HTTP 500.
func TestMissingGroupACLIsNamed(t *testing.T) {
	for _, version := range []string{"0.15.0", "0.23.1", "0.29.0"} {
		t.Run(version, func(t *testing.T) {
			w := newWorld(t, 3)
			s := w.ksql(func(c *ksqlfake.Config) { c.Version, c.GroupACLDenied = version, true })
			c := client(t, s.URL(), nil)
			facts := preflight(t, c)
			opts := quick
			opts.Stall = 10 * time.Second
			start := time.Now()
			_, err := c.CatchUp(context.Background(), facts, map[int32]int64{0: 1}, opts)
			if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "lacks DESCRIBE/READ on consumer group _confluent-ksql-default_query_CTAS_TABLE_MIN_ORDER_1") {
				t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("named the missing ACL after %s; retrying cannot grant it", el)
			}
		})
	}
}

// The group is _confluent-ksql-<service id> +
// ksql.persistent.prefix + query id, whatever the prefix.
func TestCatchUpFindsTheGroupWhateverThePersistentPrefix(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.PersistentPrefix = "pq_" })
	c := client(t, s.URL(), nil)
	facts := preflight(t, c)
	rows := rowsOf(10, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
	catchUp(t, c, facts, w.produce(w.schemas, rows, nil))
}
