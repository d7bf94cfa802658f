package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/fake/ksqlfake"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// The real binary against every ksqlDB release profile, over plain HTTP
// and over TLS with HTTP/2 offered by ALPN, with a key subject whose latest
// version is not ksqlDB's own key schema: check; a partial first run in
// full mode with verification; an auto rerun that must choose delta, with
// pull queries rate-limited the way that release answers; and a delta run
// on the current table that produces nothing.
func TestEveryKsqlDBRelease(t *testing.T) {
	for _, version := range ksqlfake.Profiles {
		for _, tls := range []bool{false, true} {
			name := version + "/http"
			if tls {
				name = version + "/https+h2"
			}
			t.Run(name, func(t *testing.T) {
				s := startStack(t, stack.Options{Users: 300, KsqlVersion: version, KsqlTLS: tls, KsqlCommitInterval: 200 * time.Millisecond})
				// The key subject's latest version is not ksqlDB's own bare
				// "long", as after someone registered another key schema.
				if _, err := s.Registry.Register(stack.Topic+"-key", `{"type":"long","connect.name":"other"}`); err != nil {
					t.Fatal(err)
				}
				if c := runJob(t, s, "check"); c.code != 0 {
					t.Fatalf("check: exit %d: %s\n%s", c.code, c.report.Error, tail(c.stderr, 2000))
				}
				table := "`" + s.Settings()["bigquery.table"] + "`"
				part := runJob(t, s, "--bigquery-query=SELECT user_id, MIN(order_id) AS min_order_id FROM "+table+" WHERE user_id <= 200 GROUP BY user_id")
				if part.code != 0 || part.report.Mode != "full" || part.report.Verification == nil || part.report.Verification.Status != "passed" {
					t.Fatalf("first run: exit %d: %s\n%s", part.code, part.report.Error, tail(part.stderr, 2000))
				}
				endpoint := "/query"
				if s.KsqlDB.Profile().QueryStreamHTTP1 {
					endpoint = "/query-stream"
				}
				if got := part.report.Verification.Endpoint; got != endpoint {
					t.Errorf("verified through %s; want %s", got, endpoint)
				}

				s.KsqlDB.RateLimitNext(3)
				r := runJob(t, s)
				if r.code != 0 || r.report.Mode != "delta" || r.report.Delta == nil || r.report.Delta.Missing != 100 || r.report.RecordsAcked != 100 ||
					r.report.Verification == nil || r.report.Verification.Status != "passed" {
					t.Fatalf("auto rerun: exit %d, mode %q, delta %+v, acked %d: %s\n%s", r.code, r.report.Mode, r.report.Delta, r.report.RecordsAcked, r.report.Error, tail(r.stderr, 2000))
				}
				eachKeyOnce(t, s)
				if !strings.Contains(r.stderr, "mode=auto chose delta") {
					t.Errorf("the log does not say why delta was chosen:\n%s", tail(r.stderr, 2000))
				}

				again := runJob(t, s, "--mode=delta")
				if again.code != 0 || again.report.RecordsProduced != 0 || again.report.Delta == nil || again.report.Delta.AlreadyPresent != 300 {
					t.Fatalf("delta on a current table: exit %d, produced %d, delta %+v: %s", again.code, again.report.RecordsProduced, again.report.Delta, again.report.Error)
				}
			})
		}
	}
}
