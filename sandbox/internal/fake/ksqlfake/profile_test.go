package ksqlfake

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/murmur2"
)

func TestProfileFor(t *testing.T) {
	const (
		old     = 400 // rate limit on the old /query handler
		generic = 500 // rate limit through the /query-stream handler before 0.28.2
		limited = 429
	)
	for _, c := range []struct {
		version string
		want    Profile
	}{
		{"0.15.0", Profile{RateLimitQuery: old, RateLimitQueryStream: generic, OffsetErrorsAsWarnings: true, CommitOnlyAfterRecord: true}},
		{"0.17.0", Profile{QueryRefusedOverHTTP2: true, RateLimitQuery: old, RateLimitQueryStream: generic, DescribePartitions: true, CommitOnlyAfterRecord: true}},
		{"0.22.0", Profile{QueryRefusedOverHTTP2: true, TableScans: true, RateLimitQuery: old, RateLimitQueryStream: generic, DescribePartitions: true, CommitOnlyAfterRecord: true}},
		{"0.23.1", Profile{QueryRefusedOverHTTP2: true, TableScans: true, RateLimitQuery: old, RateLimitQueryStream: generic, DescribePartitions: true}},
		{"0.24.0", Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: generic, RateLimitQueryStream: generic, DescribePartitions: true}},
		{"0.28.1", Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: generic, RateLimitQueryStream: generic, DescribePartitions: true}},
		{"0.28.2", Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: limited, RateLimitQueryStream: limited, DescribePartitions: true}},
		{"0.29.0-rc3", Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: limited, RateLimitQueryStream: limited, DescribePartitions: true}},
		{"6.2.1", Profile{QueryRefusedOverHTTP2: true, RateLimitQuery: old, RateLimitQueryStream: generic, DescribePartitions: true, CommitOnlyAfterRecord: true}},
		{"7.0.0", Profile{QueryRefusedOverHTTP2: true, RateLimitQuery: old, RateLimitQueryStream: generic, DescribePartitions: true, CommitOnlyAfterRecord: true}},
		{"7.1.0", Profile{QueryRefusedOverHTTP2: true, QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: old, RateLimitQueryStream: generic, DescribePartitions: true}},
		{"7.2.0", Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: generic, RateLimitQueryStream: generic, DescribePartitions: true}},
		{"7.4.0", Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: limited, RateLimitQueryStream: limited, DescribePartitions: true}},
		{"8.3.0-364", Profile{QueryStreamHTTP1: true, PullLimit: true, TableScans: true, RateLimitQuery: limited, RateLimitQueryStream: limited, DescribePartitions: true}},
	} {
		got, err := ProfileFor(c.version)
		if c.want.Version == "" {
			c.want.Version = c.version
		}
		if err != nil || got != c.want {
			t.Errorf("ProfileFor(%s) = %+v, %v; want %+v", c.version, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0.14.0", "6.0.0", "9.0.0", "latest", "x.y"} {
		if _, err := ProfileFor(bad); err == nil {
			t.Errorf("ProfileFor(%q) accepted", bad)
		}
	}
	for _, v := range Profiles {
		if _, err := ProfileFor(v); err != nil {
			t.Errorf("Profiles holds %s: %v", v, err)
		}
	}
}

// h2Client trusts s and negotiates HTTP/2 where the server offers it, as
// Go's default transport does.
func h2Client(t *testing.T, s *Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CertPEM()) {
		t.Fatal("no certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Transport: tr}
}

func TestQueryOverHTTP2ByRelease(t *testing.T) {
	e := newEnv(t, 1)
	stmt := ksqlBody("SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1);")
	for _, c := range []struct {
		version string
		want    int
	}{{"0.15.0", 200}, {"0.23.1", 405}, {"0.28.2", 200}} {
		s := e.start(func(cfg *Config) { cfg.Version, cfg.TLS = c.version, true })
		resp, err := h2Client(t, s).Post(s.URL()+"/query", "application/vnd.ksql.v1+json", strings.NewReader(stmt))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != c.want {
			t.Errorf("%s: /query over %s: %d %s; want HTTP/2 and %d", c.version, resp.Proto, resp.StatusCode, body, c.want)
		}
		if c.want == 405 && len(body) != 0 {
			t.Errorf("%s: 405 with a body %q; ksqlDB sends none", c.version, body)
		}
	}
}

func TestLimitAndRateLimitByRelease(t *testing.T) {
	e := newEnv(t, 1)
	limit := ksqlBody("SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1) LIMIT 1;")
	lookup := ksqlBody("SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN (1);")

	old := e.start(func(c *Config) { c.Version = "0.23.1" })
	if code, _, body := post(t, old.URL(), "/query", limit, ""); code != 400 || !strings.Contains(body, "Pull queries don't support LIMIT clauses.") {
		t.Errorf("0.23 LIMIT: %d %s", code, body)
	}
	old.RateLimitNext(1)
	if code, _, body := post(t, old.URL(), "/query", lookup, ""); code != 400 || !strings.Contains(body, `"error_code":40000`) || !strings.Contains(body, "rate limit for pull queries") {
		t.Errorf("0.23 rate limit: %d %s; want 400 / 40000", code, body)
	}

	cur := e.start(func(c *Config) { c.Version = "0.28.2" })
	if code, _, body := post(t, cur.URL(), "/query", limit, ""); code != 200 {
		t.Errorf("0.28 LIMIT: %d %s", code, body)
	}
	cur.RateLimitNext(1)
	if code, _, body := post(t, cur.URL(), "/query", lookup, ""); code != 429 || !strings.Contains(body, `"error_code":42900`) {
		t.Errorf("0.28.2 rate limit: %d %s; want 429 / 42900", code, body)
	}
}

func TestDescribePartitionsByRelease(t *testing.T) {
	e := newEnv(t, 3)
	for _, c := range []struct {
		version  string
		extended bool
		want     string
	}{{"0.15.0", false, `"partitions":0`}, {"0.15.0", true, `"partitions":3`}, {"0.22.0", false, `"partitions":3`}} {
		s := e.start(func(cfg *Config) { cfg.Version = c.version })
		stmt := "DESCRIBE `stream_order_insert`;"
		if c.extended {
			stmt = "DESCRIBE `stream_order_insert` EXTENDED;"
		}
		if _, _, body := post(t, s.URL(), "/ksql", ksqlBody(stmt), ""); !strings.Contains(body, c.want) {
			t.Errorf("%s %s: want %s in %s", c.version, stmt, c.want, body)
		}
	}
}

func TestInfoReportsTheVersion(t *testing.T) {
	e := newEnv(t, 1)
	s := e.start(func(c *Config) { c.Version = "7.4.0" })
	resp, err := http.Get(s.URL() + "/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"version":"7.4.0"`) {
		t.Errorf("/info: %s", body)
	}
}

// A key written with another key schema id than ksqlDB's own hashes to
// another partition: pull queries do not find it, as in ksqlDB.
func TestPullQueriesRouteWithKsqlDBsOwnKeySchema(t *testing.T) {
	e := newEnv(t, 3)
	other, err := e.reg.Register(topic+"-key", `{"type":"long","connect.name":"other"}`) // now the latest version
	if err != nil {
		t.Fatal(err)
	}
	s := e.start(nil)
	// Find a key whose bytes under the two ids land on different partitions.
	var k int64
	for k = 1; ; k++ {
		if murmur2.Partition(e.key(k), 3) != murmur2.Partition(wire(t, other, keySchema, k), 3) {
			break
		}
	}
	e.produce(murmur2.Partition(wire(t, other, keySchema, k), 3), wire(t, other, keySchema, k), e.value(5))
	e.produce(-1, e.key(k+1000), e.value(6))
	waitFor(t, "consumption", func() bool { return s.Processed() == 2 })
	_, _, body := post(t, s.URL(), "/query", ksqlBody("SELECT * FROM `table_min_order` WHERE `ACCOUNT_ID` IN ("+itoa(k)+","+itoa(k+1000)+");"), "")
	if strings.Contains(body, `[`+itoa(k)+`,5]`) || !strings.Contains(body, `"columns":[`+itoa(k+1000)+`,6]`) {
		t.Errorf("routing by ksqlDB's own key id %d (latest is %d): %s", e.keyID, other, body)
	}
}

// A writer id that is not registered under the record's subject fails
// deserialization, and the record is dropped.
func TestUnregisteredWriterIDsAreDropped(t *testing.T) {
	e := newEnv(t, 1)
	foreign, err := e.reg.Register("OTHER.TOPIC-value", strings.Replace(valueSchema, "KsqlDataSourceSchema\"", "Other\"", 1))
	if err != nil {
		t.Fatal(err)
	}
	s := e.start(nil)
	e.produce(0, e.key(1), wire(t, foreign, valueSchema, map[string]any{"ORDER_ID": int64(9)}))
	e.produce(0, e.key(2), e.value(7))
	waitFor(t, "consumption", func() bool { return s.Processed()+s.Dropped() == 2 })
	if s.Dropped() != 1 {
		t.Errorf("dropped %d records; want the one written with id %d, which %s-value does not hold", s.Dropped(), foreign, topic)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
