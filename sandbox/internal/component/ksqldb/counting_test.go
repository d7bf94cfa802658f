package ksqldb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
)

// countingTable makes the double's table V000006's table_first_order,
// created under the SET statements of that migration.
func countingTable(c *ksqlfake.Config) {
	c.Table, c.TableTopic, c.MinColumn, c.CountColumn = "table_first_order", "TABLE.FIRST_ORDER", "MIN_ORDER_ID", "ORDER_COUNT"
	c.QueryProperties = map[string]any{"cache.max.bytes.buffering": "0", "processing.guarantee": "exactly_once_v2", "auto.offset.reset": "earliest"}
}

func countingClient(c *ksqldb.Config) { c.Table = "table_first_order" }

// The job backfills and verifies the counting table as it does
// the join's: preflight takes its MIN column beside the COUNT column, and
// verification compares MIN.
func TestBackfillAndVerifyTheCountingTable(t *testing.T) {
	w := newWorld(t, 3)
	s := w.ksql(countingTable)
	c := client(t, s.URL(), countingClient)
	facts := preflight(t, c)
	if facts.TableValueColumn != "MIN_ORDER_ID" || facts.CountColumn != "ORDER_COUNT" {
		t.Fatalf("preflight took MIN column %q and COUNT column %q, want MIN_ORDER_ID and ORDER_COUNT", facts.TableValueColumn, facts.CountColumn)
	}
	rows := rowsOf(50, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return int64(i) + 1000 })
	catchUp(t, c, facts, w.produce(w.schemas, rows, nil))
	v, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast)
	if err != nil || v.Status != "passed" || v.Matched != 50 {
		t.Fatalf("verify %+v: %v", v, err)
	}
}

// The counting table's query must run without a record cache;
// preflight reads the query's overridden cache.max.bytes.buffering
// (EXPLAIN) and the server's settings (SHOW PROPERTIES), and refuses a
// cache above 0 with the statement that fixes it. The join's table, whose
// announcer does not depend on the cache, is not refused.
func TestPreflightRefusesACountingTableWithACache(t *testing.T) {
	for name, tc := range map[string]struct {
		fake   func(*ksqlfake.Config)
		client func(*ksqldb.Config)
		want   []string // nil: preflight passes
	}{
		"counting, cache 0": {countingTable, countingClient, nil},
		"counting, no SET (ksqlDB's 10 MB)": {func(c *ksqlfake.Config) {
			countingTable(c)
			delete(c.QueryProperties, "cache.max.bytes.buffering")
		}, countingClient, []string{"cache.max.bytes.buffering", "10000000", "SET 'cache.max.bytes.buffering'='0'", "V000006"}},
		"counting, server-wide statestore.cache.max.bytes": {func(c *ksqlfake.Config) {
			countingTable(c)
			c.ServerProperties = map[string]string{"ksql.streams.statestore.cache.max.bytes": "10485760"}
		}, countingClient, []string{"ksql.streams.statestore.cache.max.bytes=10485760", "overrides"}},
		"counting, server-wide statestore.cache.max.bytes 0": {func(c *ksqlfake.Config) {
			countingTable(c)
			c.ServerProperties = map[string]string{"ksql.streams.statestore.cache.max.bytes": "0"}
		}, countingClient, nil},
		"join, default cache": {nil, nil, nil},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, 3)
			s := w.ksql(tc.fake)
			_, err := client(t, s.URL(), tc.client).Preflight(context.Background(), expectation())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("preflight refused: %v", err)
				}
				return
			}
			if backfill.KindOf(err) != backfill.KindContract {
				t.Fatalf("want a contract error, got kind %v: %v", backfill.KindOf(err), err)
			}
			for _, part := range tc.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error lacks %q:\n%v", part, err)
				}
			}
		})
	}
}
