package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/internal/sandbox"
)

// topicKeys reads every record of the topic with franz-go and counts each
// decoded key.
func topicKeys(t *testing.T, s *sandbox.Stack, want int) map[int64]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Kafka.ListenAddrs()...), kgo.ConsumeTopics(sandbox.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	keys := map[int64]int{}
	n := 0
	for n < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", n, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k, _ := binary.Varint(r.Key[5:])
			keys[k]++
			n++
		})
	}
	return keys
}

func TestShardsAreDisjointAndComplete(t *testing.T) {
	const shards = 3
	s := startStack(t, sandbox.Options{Users: 600, Partitions: 4})
	var acked int64
	for i := range shards {
		r := runJob(t, s, "--shard-count=3", fmt.Sprintf("--shard-index=%d", i))
		if r.code != 0 || r.report.Verification == nil || r.report.Verification.Matched != r.report.RecordsAcked {
			t.Fatalf("shard %d: exit %d, report %+v\n%s", i, r.code, r.report, r.stderr)
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
	keys := topicKeys(t, s, len(want))
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
