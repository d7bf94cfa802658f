package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

// matrixProfiles are the ksqlDB releases the matrix runs against: one
// whose Kafka Streams (before 3.1) does not commit past a transaction
// marker, and the newest.
var matrixProfiles = []string{"0.15.0", "0.29.0"}

// matrixSequence is a sequence of real job runs against one stack; the
// oracle checks the promise after each step.
type matrixSequence struct {
	name string
	opts stack.Options
	run  func(t *testing.T, s *stack.Stack, o *oracle)
}

// TestExactlyOnceMatrix runs sequences of job runs (first runs, runs
// interrupted at each stage and rerun, a topic emptied by retention,
// sharded runs on every read path, custom queries, a transactional write
// before a delta) against an old and a new ksqlDB profile, and checks with
// an independent reader that every user's minimum is on the topic and
// that no run wrote a record the table already held.
func TestExactlyOnceMatrix(t *testing.T) {
	for _, version := range matrixProfiles {
		t.Run(version, func(t *testing.T) {
			for _, seq := range matrixSequences() {
				t.Run(seq.name, func(t *testing.T) {
					t.Parallel()
					opts := seq.opts
					opts.KsqlVersion = version
					if opts.Users == 0 {
						opts.Users = 2000
					}
					s := startStack(t, opts)
					seq.run(t, s, newOracle(t, s))
				})
			}
		})
	}
}

// ok fails unless the run succeeded in mode, as the README documents.
func ok(t *testing.T, r result, mode string) {
	t.Helper()
	rep := r.report
	if r.code != 0 || rep.Status != "ok" || rep.Mode != mode {
		t.Fatalf("exit %d, status %q, mode %q (want 0, ok, %s): %s\n%s", r.code, rep.Status, rep.Mode, mode, rep.Error, tail(r.stderr, 3000))
	}
	if v := rep.Verification; rep.RecordsAcked > 0 && (v == nil || v.Status != "passed" || v.DuplicateKeys != 0) {
		t.Fatalf("verification %+v after %d records", v, rep.RecordsAcked)
	}
}

// interrupted sends SIGTERM to j and checks the documented outcome.
func interrupted(t *testing.T, j *bgJob) result {
	t.Helper()
	if err := j.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := j.wait(t)
	if r.code != backfill.ExitInterrupted || r.report.Status != "interrupted" {
		t.Fatalf("exit %d, status %q; want 130, interrupted\n%s", r.code, r.report.Status, tail(r.stderr, 3000))
	}
	if v := r.report.Verification; v != nil && v.Status != "interrupted" {
		t.Fatalf("verification %+v of an interrupted run; want status interrupted", v)
	}
	return r
}

func matrixSequences() []matrixSequence {
	return []matrixSequence{
		{name: "first run then rerun", run: func(t *testing.T, s *stack.Stack, o *oracle) {
			ok(t, runJob(t, s), "full")
			o.check(t, true)
			again := runJob(t, s)
			ok(t, again, "delta")
			if again.report.RecordsProduced != 0 {
				t.Fatalf("a rerun on a current table produced %d records", again.report.RecordsProduced)
			}
			o.check(t, true)
		}},
		{name: "interrupted at produce", run: func(t *testing.T, s *stack.Stack, o *oracle) {
			requests, fast := slowProduce(s, 40*time.Millisecond)
			j := startJob(t, s, nil, "--kafka-properties=batch.num.messages=20", "--kafka-queue-max-messages=100",
				"--kafka-linger=1ms", "--pipeline-workers=1", "--pipeline-batch-size=20")
			waitUntil(t, "records in the topic", j, func() bool { return requests() >= 5 && stored(s.Kafka) > 0 })
			interrupted(t, j)
			o.check(t, false)
			fast()
			ok(t, runJob(t, s), "delta")
			o.check(t, true)
		}},
		{name: "interrupted at catch-up", opts: stack.Options{KsqlPaused: true}, run: func(t *testing.T, s *stack.Stack, o *oracle) {
			j := startJob(t, s, nil)
			waitUntil(t, "the barrier before verification", j, func() bool {
				return strings.Contains(j.stderr.String(), "stage=\"before verification\"")
			})
			interrupted(t, j)
			o.check(t, true) // every record was acknowledged before the barrier
			s.KsqlDB.Resume()
			r := runJob(t, s)
			ok(t, r, "delta")
			if r.report.RecordsProduced != 0 {
				t.Fatalf("the rerun produced %d records the interrupted run had sent", r.report.RecordsProduced)
			}
			o.check(t, true)
		}},
		{name: "interrupted at verification", run: func(t *testing.T, s *stack.Stack, o *oracle) {
			s.KsqlDB.RateLimitNext(1 << 30) // pull queries answer 429 (or 400/500) until reset
			j := startJob(t, s, nil)
			waitUntil(t, "verification", j, func() bool {
				return strings.Contains(j.stderr.String(), "verifying with ksqlDB pull queries")
			})
			time.Sleep(200 * time.Millisecond) // retrying the rate-limited pull queries
			interrupted(t, j)
			s.KsqlDB.RateLimitNext(0)
			o.check(t, true)
			r := runJob(t, s)
			ok(t, r, "delta")
			if r.report.RecordsProduced != 0 {
				t.Fatalf("the rerun produced %d records", r.report.RecordsProduced)
			}
			o.check(t, true)
		}},
		{name: "topic emptied by retention", run: func(t *testing.T, s *stack.Stack, o *oracle) {
			ok(t, runJob(t, s), "full")
			o.check(t, true)
			deleteAllRecords(t, s)
			if n := stored(s.Kafka); n != 0 {
				t.Fatalf("the topic still holds %d records", n)
			}
			r := runJob(t, s)
			ok(t, r, "delta")
			if r.report.RecordsProduced != 0 {
				t.Fatalf("after retention emptied the topic the rerun re-sent %d users", r.report.RecordsProduced)
			}
			o.check(t, true)
		}},
		{name: "three shards on storage", run: shards("--bigquery-read-api=storage")},
		{name: "three shards on auto, storage unreachable", run: shards("--bigquery-read-api=auto", "--bigquery-storage-endpoint=127.0.0.1:1", "--bigquery-read-session-timeout=3s")},
		{name: "three shards on rest", run: shards("--bigquery-read-api=rest")},
		{name: "custom query with repeated keys", run: func(t *testing.T, s *stack.Stack, o *oracle) {
			r := runJob(t, s, "--bigquery-query=SELECT user_id, order_id AS min_order_id FROM "+bq()+" -- every order, no GROUP BY")
			ok(t, r, "full")
			if r.report.RecordsAcked != int64(len(o.want)) {
				t.Fatalf("%d records for %d users", r.report.RecordsAcked, len(o.want))
			}
			o.check(t, true)
		}},
		{name: "custom query with extra columns", run: func(t *testing.T, s *stack.Stack, o *oracle) {
			query := "--bigquery-query=SELECT user_id, MIN(order_id) AS min_order_id, MAX(order_id) AS order_id FROM " + bq() + " GROUP BY user_id"
			r := runJob(t, s, query)
			if r.code != backfill.ExitContract || !strings.Contains(r.report.Error, "min_order_id") || !strings.Contains(r.report.Error, "order_id") || r.report.RecordsProduced != 0 {
				t.Fatalf("two candidate columns: exit %d (want 3), error %q, %d produced", r.code, r.report.Error, r.report.RecordsProduced)
			}
			o.check(t, false)
			ok(t, runJob(t, s, query, "--mapping-value-columns=ORDER_ID=min_order_id"), "full")
			o.check(t, true)
		}},
		{name: "transactional write before a delta", run: func(t *testing.T, s *stack.Stack, o *oracle) {
			ok(t, runJob(t, s), "full")
			o.check(t, true)
			// Another producer (an exactly-once INSERT INTO, say) commits a
			// transaction: its marker is the last entry of a partition.
			const user = 99_000_000
			o.allowForeign(user)
			writeTransactional(t, s, user, 5)
			r := runJob(t, s, "--ksqldb-stall-timeout=8s")
			ok(t, r, "delta")
			if r.report.RecordsProduced != 0 {
				t.Fatalf("the delta re-sent %d users", r.report.RecordsProduced)
			}
			o.check(t, true)
		}},
	}
}

// shards runs three shards at once, as the Indexed Job does, with a
// query key shared by the shards, and checks each shard's report.
func shards(args ...string) func(t *testing.T, s *stack.Stack, o *oracle) {
	return func(t *testing.T, s *stack.Stack, o *oracle) {
		key := "--bigquery-query-key=matrix-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		var jobs []*bgJob
		for i := range 3 {
			jobs = append(jobs, startJob(t, s, nil, append([]string{"--shard-count=3", fmt.Sprintf("--shard-index=%d", i), key}, args...)...))
		}
		var acked int64
		for i, j := range jobs {
			r := j.wait(t)
			ok(t, r, "full")
			if r.report.ShardIndex != i || r.report.RecordsAcked == 0 || r.report.RecordsAcked > int64(len(o.want))/2 {
				t.Fatalf("shard %d wrote %d of %d users: not its share", i, r.report.RecordsAcked, len(o.want))
			}
			acked += r.report.RecordsAcked
		}
		if acked != int64(len(o.want)) {
			t.Fatalf("the shards wrote %d records for %d users", acked, len(o.want))
		}
		o.check(t, true)
	}
}

// deleteAllRecords removes every record of the stream's topic, as
// retention or kafka-delete-records does: the end offsets stay.
func deleteAllRecords(t *testing.T, s *stack.Stack) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Kafka.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	del := kadm.Offsets{}
	for _, p := range s.Kafka.PartitionInfos(stack.Topic) {
		del.Add(kadm.Offset{Topic: stack.Topic, Partition: p.Partition, At: p.HighWatermark})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).DeleteRecords(ctx, del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("deleting the topic's records: %v", err)
	}
}

// writeTransactional writes user's record with order id order in a
// committed transaction, encoded as ksqlDB's serializer would.
func writeTransactional(t *testing.T, s *stack.Stack, user, order int64) {
	t.Helper()
	keyID, err := s.Registry.Register(stack.Topic+"-key", stack.KeySchema)
	if err != nil {
		t.Fatal(err)
	}
	valueID, err := s.Registry.Register(stack.Topic+"-value", stack.ValueSchema)
	if err != nil {
		t.Fatal(err)
	}
	value := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(value[1:], uint32(valueID))
	value = binary.AppendVarint(binary.AppendVarint(value, 1), order) // union branch 1: long
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Kafka.ListenAddrs()...), kgo.DefaultProduceTopic(stack.Topic),
		kgo.TransactionalID("matrix-"+strconv.Itoa(os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Key: wireKey(uint32(keyID), user), Value: value}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

// TestScaleInterruptedRerun is the matrix's interrupted-and-rerun sequence
// at 200,000 users behind a lagging ksqlDB (10 s between fetching a record
// and aggregating it). It runs under `make test-scale`
// (BACKFILL_E2E_SCALE=1), not in `make test`.
func TestScaleInterruptedRerun(t *testing.T) {
	if os.Getenv("BACKFILL_E2E_SCALE") == "" {
		t.Skip("200,000 users: run with make test-scale (BACKFILL_E2E_SCALE=1)")
	}
	const users = 200_000
	s := startStack(t, stack.Options{Users: users, OrdersPerUser: 2, Partitions: 6, KsqlLag: 10 * time.Second})
	o := newOracle(t, s)
	requests, fast := slowProduce(s, 50*time.Millisecond)
	j := startJob(t, s, nil, "--ksqldb-verify=sample", "--kafka-properties=batch.num.messages=1000")
	waitUntil(t, "a quarter of the users on the topic", j, func() bool { return requests() > 0 && stored(s.Kafka) >= users/4 })
	first := interrupted(t, j)
	o.check(t, false)
	fast()
	again := runJob(t, s, "--ksqldb-verify=sample")
	ok(t, again, "delta")
	o.check(t, true)
	if first.report.RecordsAcked+again.report.RecordsAcked != users {
		t.Fatalf("the runs acknowledged %d + %d records for %d users", first.report.RecordsAcked, again.report.RecordsAcked, users)
	}
	t.Logf("interrupted after %d records; the rerun sent %d (delta %+v)", first.report.RecordsAcked, again.report.RecordsAcked, again.report.Delta)
}
