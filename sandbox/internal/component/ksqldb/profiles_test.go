package ksqldb_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
)

// Every call the job makes, against every release profile of the double,
// over plain HTTP and over TLS with HTTP/2 offered by ALPN: preflight, the
// catch-up barrier, verification through pull queries, and delta lookups
// that are first rate-limited the way that release answers.
func TestEveryReleaseProfile(t *testing.T) {
	for _, version := range ksqlfake.Profiles {
		for _, tls := range []bool{false, true} {
			name := version + "/http"
			if tls {
				name = version + "/https+h2"
			}
			t.Run(name, func(t *testing.T) {
				w := newWorld(t, 3)
				s := w.ksql(func(c *ksqlfake.Config) { c.Version, c.TLS = version, tls })
				c := client(t, s.URL(), func(cfg *ksqldb.Config) {
					if tls {
						ca := filepath.Join(t.TempDir(), "ca.pem")
						if err := os.WriteFile(ca, s.CertPEM(), 0o600); err != nil {
							t.Fatal(err)
						}
						cfg.TLSCAFile = ca
					}
				})
				facts := preflight(t, c)
				if facts.ServerVersion != version || facts.Partitions != 3 {
					t.Fatalf("facts: version %q, partitions %d", facts.ServerVersion, facts.Partitions)
				}
				rows := rowsOf(120, func(i int) int64 { return int64(i) + 1 }, func(i int) int64 { return 1000 + int64(i) })
				catchUp(t, c, facts, w.produce(w.schemas, rows, nil))

				v, err := c.Verify(context.Background(), facts, record(t, ksqldb.ModeFull, 0, rows), fast)
				if err != nil || v.Status != "passed" || v.Matched != 120 {
					t.Fatalf("verify: %+v %v", v, err)
				}
				wantEndpoint := "/query"
				if s.Profile().QueryStreamHTTP1 {
					wantEndpoint = "/query-stream"
				}
				if v.Endpoint != wantEndpoint {
					t.Errorf("verified through %s; want %s on %s", v.Endpoint, wantEndpoint, version)
				}

				s.RateLimitNext(2)
				d := c.NewDelta(facts, 50)
				more := append(rows[:60:60], rowsOf(10, func(i int) int64 { return 5000 + int64(i) }, func(i int) int64 { return 1 })...)
				keep := make([]bool, len(more))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := d.Keep(ctx, more, keep); err != nil {
					t.Fatalf("delta: %v", err)
				}
				if got := d.Counts(); got.Missing != 10 || got.AlreadyPresent != 60 {
					t.Errorf("delta counts %+v; want 10 missing, 60 present", got)
				}
			})
		}
	}
}
