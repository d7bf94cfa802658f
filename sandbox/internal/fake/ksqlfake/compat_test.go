package ksqlfake

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// compatRows are docs/ksqldb.md's compatibility table rows: a label and a
// release whose profile stands for every release the label names.
var compatRows = []struct{ label, version string }{
	{"0.15", "0.15.0"},
	{"0.17–0.21, CP 6.2", "0.17.0"},
	{"0.22–0.23", "0.23.1"},
	{"CP 7.0", "7.0.0"},
	{"CP 7.1", "7.1.0"},
	{"0.24–0.28.1, CP 7.2", "0.24.0"},
	{"0.28.2, 0.29, CP 7.3–8.x", "0.28.2"},
}

// compatTable renders the table from the profiles.
func compatTable(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| ksqlDB | pull queries the job sends | `/query` over HTTP/2 | `/query-stream` over HTTP/1.1 | pull-query rate limit on `/query` | `LIMIT` in pull queries | table scans by default | `DESCRIBE` partitions |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	yes := func(ok bool, y, n string) string {
		if ok {
			return y
		}
		return n
	}
	for _, r := range compatRows {
		p, err := ProfileFor(r.version)
		if err != nil {
			t.Fatal(err)
		}
		rate := map[int]string{400: "400 / 40000 (retried)", 500: "500 / 50000 (retried)", 429: "429 / 42900 (retried)"}[p.RateLimitQuery]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.label,
			yes(p.QueryStreamHTTP1, "`/query-stream`", "`/query`"),
			yes(p.QueryRefusedOverHTTP2, "405, empty body", "served"),
			yes(p.QueryStreamHTTP1, "served", "400 / 40004"),
			rate,
			yes(p.PullLimit, "accepted", "refused"),
			yes(p.TableScans, "on", "off"),
			yes(p.DescribePartitions, "always", "`EXTENDED` only"))
	}
	return b.String()
}

// docs/ksqldb.md's compatibility table is the one the profiles give;
// UPDATE_DOCS=1 go test -run TestCompatibility rewrites it.
func TestCompatibilityTableMatchesTheProfiles(t *testing.T) {
	raw, err := os.ReadFile("../../../../docs/ksqldb.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- ksqldb-compat:begin -->\n", "<!-- ksqldb-compat:end -->"
	_, rest, ok1 := strings.Cut(string(raw), begin)
	got, _, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("docs/ksqldb.md lacks the %q … %q block", strings.TrimSpace(begin), end)
	}
	want := compatTable(t)
	if got == want {
		return
	}
	if os.Getenv("UPDATE_DOCS") != "" {
		out := strings.Replace(string(raw), begin+got+end, begin+want+end, 1)
		if err := os.WriteFile("../../../../docs/ksqldb.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/ksqldb.md's ksqlDB compatibility table differs from the profiles (UPDATE_DOCS=1 rewrites it); want:\n%s", want)
}
