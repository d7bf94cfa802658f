package ksqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
)

// With shared runtimes the table query's own group never
// commits; the job says so, naming the setting, instead of stalling.
func TestSharedRuntimeIsNamedInsteadOfStalling(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(func(c *ksqlfake.Config) { c.SharedRuntime = true })
	c := client(t, s.URL(), nil)
	facts, err := c.Preflight(context.Background(), expectation())
	if err == nil {
		rows := rowsOf(10, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
		_, err = c.CatchUp(context.Background(), facts, w.produce(w.schemas, rows, nil), quick)
	}
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "ksql.runtime.feature.shared.enabled=true") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
}

// With standby reads on, a standby lagging without bound may
// answer pull queries; every delta lookup and verification query bounds
// the lag, so a stale standby never decides what is sent or verified.
func TestPullQueriesAreNotServedByALaggingStandby(t *testing.T) {
	for _, version := range []string{"0.15.0", "0.29.0"} {
		t.Run(version, func(t *testing.T) {
			w := newWorld(t, 3)
			s := w.ksql(func(c *ksqlfake.Config) { c.Version, c.LaggingStandby, c.LagReporting = version, true, true })
			c := client(t, s.URL(), nil)
			facts := preflight(t, c)
			rows := rowsOf(40, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 100 })
			catchUp(t, c, facts, w.produce(w.schemas, rows, nil))

			d := c.NewDelta(facts, 25)
			keep := make([]bool, len(rows))
			if err := d.Keep(context.Background(), rows, keep); err != nil {
				t.Fatal(err)
			}
			if got := d.Counts(); got.AlreadyPresent != 40 {
				t.Errorf("delta lookups %+v: a stale standby answered, the job would send every minimum again", got)
			}
			v, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast)
			if err != nil || v.Matched != 40 {
				t.Fatalf("verify %+v: %v", v, err)
			}
		})
	}
}
