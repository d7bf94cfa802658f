package bigquery

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	bq "google.golang.org/api/bigquery/v2"

	"github.com/ordermin/ordermin-backfill/backfill"
)

var retrySuffix = regexp.MustCompile(`_r[0-9]+$`)

// sharedJobs returns the ids of the shared query jobs inserted, in order.
func sharedJobs(jobs []*bq.Job) []string {
	var ids []string
	for _, j := range jobs {
		if strings.HasPrefix(j.Configuration.Query.Query, "SELECT *, ") {
			ids = append(ids, j.JobReference.JobId)
		}
	}
	return ids
}

// A shared query job that failed must not be sticky (every shard and
// every retried pod attaching to the same failed job id): on a retryable
// reason every shard moves to the same next id, "<id>_r1".
func TestAFailedSharedJobMovesEveryShardToTheNextID(t *testing.T) {
	t.Parallel()
	const users, shards = 1000, 2
	_, jobs, shard := shardedRun(t, users, shards)
	jobs.Fail = func(j *bq.Job) *bq.ErrorProto {
		if strings.HasPrefix(j.Configuration.Query.Query, "SELECT *, ") && !retrySuffix.MatchString(j.JobReference.JobId) {
			return &bq.ErrorProto{Reason: "jobInternalError", Message: "The job encountered an internal error during execution and was unable to complete successfully."}
		}
		return nil
	}
	all := map[int64]int64{}
	for i := range shards {
		r, err := shard(i).Open(context.Background())
		if err != nil {
			t.Fatalf("shard %d: %v (kind %s)", i, err, backfill.KindOf(err))
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
	ids := sharedJobs(jobs.Inserted())
	if len(ids) != 2 || ids[1] != ids[0]+"_r1" {
		t.Fatalf("shared jobs %q: want the failed one and one <id>_r1 both shards use", ids)
	}
}

// A failed shared job whose reason a retry does not change: the message
// says so, and no other job is started.
func TestAFailedSharedJobWithANonRetryableReasonSaysSo(t *testing.T) {
	t.Parallel()
	_, jobs, shard := shardedRun(t, 100, 2)
	jobs.Fail = func(j *bq.Job) *bq.ErrorProto {
		if strings.HasPrefix(j.Configuration.Query.Query, "SELECT *, ") {
			return &bq.ErrorProto{Reason: "invalidQuery", Message: "Division by zero: 1 / 0"}
		}
		return nil
	}
	_, err := shard(1).Open(context.Background())
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "invalidQuery") || !strings.Contains(err.Error(), "not retryable") {
		t.Fatalf("err %v (kind %s): want a config error saying the reason is not retryable", err, backfill.KindOf(err))
	}
	if ids := sharedJobs(jobs.Inserted()); len(ids) != 1 {
		t.Fatalf("shared jobs %q: want the failed one only", ids)
	}
}

// The moves are bounded: after maxJobAttempts failed jobs the shard
// stops with a retryable exit that says what a new run does.
func TestSharedJobRetriesAreBounded(t *testing.T) {
	t.Parallel()
	_, jobs, shard := shardedRun(t, 100, 2)
	jobs.Fail = func(j *bq.Job) *bq.ErrorProto {
		if strings.HasPrefix(j.Configuration.Query.Query, "SELECT *, ") {
			return &bq.ErrorProto{Reason: "backendError", Message: "Backend error"}
		}
		return nil
	}
	_, err := shard(0).Open(context.Background())
	if backfill.KindOf(err) != backfill.KindSource || !strings.Contains(err.Error(), "backendError") {
		t.Fatalf("err %v (kind %s): want a source error naming the reason", err, backfill.KindOf(err))
	}
	ids := sharedJobs(jobs.Inserted())
	if last := fmt.Sprintf("%s_r%d", ids[0], maxJobAttempts-1); len(ids) != maxJobAttempts || ids[len(ids)-1] != last {
		t.Fatalf("shared jobs %q: want %d, the last %s", ids, maxJobAttempts, last)
	}
}

// The shards share one count of the shared result, grouped by shard, as
// they share the query: one job with a deterministic id that the others
// attach to, not N scans of the shard and key columns (the whole column
// without clustering).
func TestShardsShareOneCount(t *testing.T) {
	t.Parallel()
	const users, shards = 1000, 3
	_, jobs, shard := shardedRun(t, users, shards)
	for i := range shards {
		r, err := shard(i).Open(context.Background())
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		want := 0
		for u := 1; u <= users; u++ {
			if u%shards == i {
				want++
			}
		}
		if total, known := r.TotalRows(); !known || total != uint64(want) {
			t.Errorf("shard %d expects %d rows (known %v), want %d", i, total, known, want)
		}
		r.Close()
	}
	var counts []string
	for _, j := range jobs.Inserted() {
		if q := j.Configuration.Query.Query; strings.Contains(q, "COUNT(") {
			counts = append(counts, j.JobReference.JobId+": "+q)
		}
	}
	if len(counts) != 1 || !strings.Contains(counts[0], "GROUP BY") {
		t.Fatalf("count jobs %q: want one, grouped by shard, for all shards", counts)
	}
}

// Jobs are waited on by polling jobs.get (waitJob), not through
// getQueryResults: a job that runs a while is waited for, by every shard,
// and nothing is read before it is done.
func TestShardsWaitForARunningJob(t *testing.T) {
	t.Parallel()
	const users, shards = 1000, 2
	_, jobs, shard := shardedRun(t, users, shards)
	jobs.RunningPolls = 3
	for i := range shards {
		r, err := shard(i).Open(context.Background())
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		got, err := readAll(t, r)
		r.Close()
		if err != nil || len(got) != users/shards {
			t.Fatalf("shard %d read %d users (%v), want %d", i, len(got), err, users/shards)
		}
	}
	if n := len(sharedJobs(jobs.Inserted())); n != 1 {
		t.Fatalf("%d shared jobs, want 1", n)
	}
}
