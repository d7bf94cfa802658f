package e2e

import (
	"testing"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

func TestBackfillEndToEndFullVerification(t *testing.T) {
	s := startStack(t, stack.Options{Users: 500, Partitions: 4})
	r := runJob(t, s)
	if r.code != 0 {
		t.Fatalf("exit %d\nreport: %+v\nstderr:\n%s", r.code, r.report, r.stderr)
	}
	want := s.Expected()
	rep := r.report
	if rep.RowsRead != int64(len(want))+1 || rep.RowsSkipped["null_key"] != 1 || rep.RecordsAcked != int64(len(want)) {
		t.Fatalf("report numbers do not match the data (%d users): %+v", len(want), rep)
	}
	if rep.Verification == nil || rep.Verification.Checked != int64(len(want)) || rep.Verification.Matched != int64(len(want)) {
		t.Fatalf("verification = %+v", rep.Verification)
	}
	// The sandbox reads through the Storage Read API, with no fallback.
	if rep.SourcePath != "storage" || rep.SourceFallback != "" {
		t.Fatalf("source_path %q (fallback %q), want storage", rep.SourcePath, rep.SourceFallback)
	}
	if rep.SourceTotal == nil || *rep.SourceTotal != rep.RowsRead {
		t.Fatalf("source_total_rows %v, rows read %d", rep.SourceTotal, rep.RowsRead)
	}
}
