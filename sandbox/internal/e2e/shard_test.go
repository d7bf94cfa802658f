package e2e

import (
	"fmt"
	"testing"

	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

func TestShardsAreDisjointAndComplete(t *testing.T) {
	const shards = 3
	s := startStack(t, stack.Options{Users: 600, Partitions: 4})
	var acked int64
	for i := range shards {
		r := runJob(t, s, "--shard-count=3", fmt.Sprintf("--shard-index=%d", i))
		if r.code != 0 || r.report.Verification == nil || r.report.Verification.Matched != r.report.RecordsAcked {
			t.Fatalf("shard %d: exit %d, report %+v\n%s", i, r.code, r.report, r.stderr)
		}
		// Each shard read its share of one query's result, and knew its size.
		if r.report.SourcePath != "storage" || r.report.SourceTotal == nil || *r.report.SourceTotal != r.report.RowsRead {
			t.Fatalf("shard %d: source_path %q, source_total_rows %v, rows_read %d", i, r.report.SourcePath, r.report.SourceTotal, r.report.RowsRead)
		}
		if r.report.RecordsAcked == 0 || r.report.RecordsAcked > 300 {
			t.Fatalf("shard %d backfilled %d of 600 users: not a fair share", i, r.report.RecordsAcked)
		}
		acked += r.report.RecordsAcked
	}
	want := s.Expected()
	if acked != int64(len(want)) {
		t.Fatalf("shards acked %d records in all, want %d", acked, len(want))
	}
	keys := consumeKeys(t, s.Kafka.ListenAddrs(), int64(len(want)))
	for user := range want {
		if keys[user] != 1 {
			t.Fatalf("user %d written %d times across shards", user, keys[user])
		}
	}
	// JOB_COMPLETION_INDEX picks the shard in an Indexed Job.
	r := runJobEnv(t, s, []string{"JOB_COMPLETION_INDEX=1"}, "--shard-count=3", "--dry-run", "--mode=full")
	if r.code != 0 || r.report.RecordsEncoded == 0 || r.report.RecordsEncoded > 300 {
		t.Fatalf("indexed shard: exit %d, report %+v", r.code, r.report)
	}
}
