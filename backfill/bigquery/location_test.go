package bigquery

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// With bigquery.location unset, a shard attaching to the
// shared job called jobs.get without a location, which BigQuery answers
// 404 for a job outside the US and EU multi-regions: every sharded run
// there failed with exit 2. The location is resolved before the first job
// call (the source table's dataset; a custom query's dry run) and passed
// on every job call.
func TestShardsAttachInARegionalLocation(t *testing.T) {
	t.Parallel()
	for _, custom := range []bool{false, true} {
		const users, shards = 1000, 2
		_, jobs, shard := shardedRun(t, users, shards)
		jobs.Location = "asia-northeast3"
		all := map[int64]int64{}
		for i := range shards {
			s := shard(i)
			if custom {
				s.cfg.Query = "SELECT user_id, MIN(order_id) AS min_order_id FROM `p.d.orders` GROUP BY user_id"
			}
			r, err := s.Open(context.Background())
			if err != nil {
				t.Fatalf("custom query %v, shard %d: %v (kind %s)", custom, i, err, backfill.KindOf(err))
			}
			got, err := readAll(t, r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			for u, v := range got {
				all[u] = v
			}
		}
		checkOrders(t, all, usersUpTo(users))
		if n := len(sharedJobs(jobs.Inserted())); n != 1 {
			t.Fatalf("custom query %v: %d shared query jobs, want 1", custom, n)
		}
	}
}

// The first call to BigQuery is bounded like
// read_session_timeout: an endpoint that never answers must not hold the
// shard until query_timeout.
func TestTheFirstCallToBigQueryIsBounded(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepts, never answers
		}
	}()
	for _, loc := range []string{"", "EU"} {
		cfg := Config{Project: "p", Endpoint: "http://" + lis.Addr().String(), Table: "p.d.orders", OrderColumn: "order_id", KeyColumn: "user_id",
			Location: loc, ShardCount: 1, ReadAPI: ReadREST, ReadSessionTimeout: 300 * time.Millisecond, QueryTimeout: 20 * time.Second}
		start := time.Now()
		_, err := New(cfg, nil).Open(context.Background())
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("location %q: the first call took %s (err %v): want it bounded by read_session_timeout", loc, took, err)
		}
		if backfill.KindOf(err) != backfill.KindSource || !strings.Contains(err.Error(), "bigquery.read_session_timeout=300ms") {
			t.Fatalf("location %q: err %v (kind %s): want a source error naming read_session_timeout", loc, err, backfill.KindOf(err))
		}
	}
}
