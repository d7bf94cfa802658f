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

// TestShardsFallBackToTheirOwnRows: three shards on read_api=auto whose
// Storage Read API endpoint is unreachable read over REST, each its own
// shard's rows only, at the same time, each query job
// writing its own result table (item 5): every user is sent once.
func TestShardsFallBackToTheirOwnRows(t *testing.T) {
	const shards = 3
	s := startStack(t, stack.Options{Users: 600, Partitions: 4})
	jobs := make([]*bgJob, shards)
	for i := range shards {
		jobs[i] = startJob(t, s, nil, "--bigquery-read-api=auto", "--bigquery-storage-endpoint=127.0.0.1:1", "--bigquery-read-session-timeout=2s",
			"--shard-count=3", fmt.Sprintf("--shard-index=%d", i), "--ksqldb-verify=none", "--mode=full")
	}
	var acked int64
	for i, j := range jobs {
		r := j.wait(t)
		if r.code != 0 || r.report.SourcePath != "rest" || r.report.SourceFallback == "" {
			t.Fatalf("shard %d: exit %d, source_path %q, fallback %q: %s\n%s", i, r.code, r.report.SourcePath, r.report.SourceFallback, r.report.Error, tail(r.stderr, 3000))
		}
		if r.report.RecordsAcked == 0 || r.report.RecordsAcked > 300 || r.report.SourceTotal == nil || *r.report.SourceTotal != r.report.RowsRead {
			t.Fatalf("shard %d acked %d of 600 users, read %d rows of %v: not its share", i, r.report.RecordsAcked, r.report.RowsRead, r.report.SourceTotal)
		}
		acked += r.report.RecordsAcked
	}
	if acked != int64(len(s.Expected())) {
		t.Fatalf("shards acked %d records in all, want %d", acked, len(s.Expected()))
	}
	eachKeyOnce(t, s)
}
