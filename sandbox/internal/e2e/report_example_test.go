package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

var updateReportExample = flag.Bool("update-report-example", false, "rewrite docs/report.md's report example from this run")

const (
	reportBegin = "<!-- report-example:begin -->\n"
	reportEnd   = "<!-- report-example:end -->"
)

// TestReportExampleIsARealRun runs the job on a small sandbox and
// holds docs/report.md's report example to the real report: the same fields,
// nested alike, so every documented field exists and none is left
// undocumented. -update-report-example rewrites the example from the run.
func TestReportExampleIsARealRun(t *testing.T) {
	s := startStack(t, stack.Options{Users: 500, Partitions: 3})
	r := runJob(t, s, "--run-id=readme-example", "--ksqldb-verify=sample")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, tail(r.stderr, 3000))
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(strings.TrimSpace(r.stdout)), "", "  "); err != nil {
		t.Fatal(err)
	}
	const path = "../../../docs/report.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(raw), reportBegin)
	block, after, ok2 := strings.Cut(rest, reportEnd)
	if !ok1 || !ok2 {
		t.Fatalf("docs/report.md has no report example between %q and %q", strings.TrimSpace(reportBegin), reportEnd)
	}
	if *updateReportExample {
		block = "```json\n" + pretty.String() + "\n```\n"
		if err := os.WriteFile(path, []byte(before+reportBegin+block+reportEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	doc := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(block), "```json"), "```")
	var documented, real any
	if err := json.Unmarshal([]byte(doc), &documented); err != nil {
		t.Fatalf("docs/report.md's report example is not JSON: %v", err)
	}
	if err := json.Unmarshal(pretty.Bytes(), &real); err != nil {
		t.Fatal(err)
	}
	if got, want := fieldPaths(documented, ""), fieldPaths(real, ""); !slices.Equal(got, want) {
		t.Fatalf("docs/report.md's report example has fields\n%v\na real run's report has\n%v\n(go test -run TestReportExampleIsARealRun -update-report-example rewrites it)", got, want)
	}
}

// fieldPaths lists the dotted paths of every object field in v, sorted;
// arrays contribute their elements' fields under "[]".
func fieldPaths(v any, prefix string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := prefix + k
			out = append(out, p)
			out = append(out, fieldPaths(e, p+".")...)
		}
	case []any:
		for _, e := range v {
			out = append(out, fieldPaths(e, strings.TrimSuffix(prefix, ".")+"[].")...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
