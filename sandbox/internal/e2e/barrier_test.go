package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/sandbox/internal/stack"
)

var lagLine = regexp.MustCompile(`waiting for ksqlDB to aggregate.* lag_records=(\d+)`)

// TestScaleVerificationFollowsALaggingKsqlDB sends 200,000 users through
// the sandbox while ksqlDB's table query aggregates 5,000 records a
// second, so it finishes about 40 s after the producer. Verification
// waits for the query's committed offsets, not a deadline, and passes;
// the log shows the lag shrinking.
func TestScaleVerificationFollowsALaggingKsqlDB(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 users")
	}
	const users = 200_000
	s := startStack(t, stack.Options{Users: users, OrdersPerUser: 1, Partitions: 6, KsqlRate: 5000})
	start := time.Now()
	r := runJob(t, s, "--ksqldb-verify=sample", "--pipeline-progress-interval=5s")
	rep := r.report
	if r.code != 0 || rep.RecordsAcked != users || rep.Verification == nil || rep.Verification.Status != "passed" {
		t.Fatalf("exit %d, report %+v\n%s", r.code, rep, tail(r.stderr, 3000))
	}
	if len(rep.CatchUps) != 1 || rep.CatchUps[0].Stage != "before verification" || rep.CatchUps[0].Status != "caught_up" || rep.CatchUps[0].Seconds < 30 {
		t.Fatalf("catch-up %+v: want one wait of at least 30 s before verification", rep.CatchUps)
	}
	var lags []int64
	for _, m := range lagLine.FindAllStringSubmatch(r.stderr, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		lags = append(lags, n)
	}
	if len(lags) < 3 {
		t.Fatalf("the log shows %d lag lines; want the lag logged every 5 s of a wait of %.0f s\n%s", len(lags), rep.CatchUps[0].Seconds, tail(r.stderr, 3000))
	}
	for i := 1; i < len(lags); i++ {
		if lags[i] >= lags[i-1] {
			t.Fatalf("the lag did not shrink between log lines: %v", lags)
		}
	}
	var acked int64
	for _, pw := range rep.PartitionsWritten {
		acked += pw.Acked
		if pw.Ranges != 1 || pw.EndOffsetBefore != 0 || pw.LowestOffset != 0 || pw.HighestOffset != pw.Acked-1 {
			t.Errorf("partition written %+v: want one range from offset 0", pw)
		}
	}
	if acked != users || len(rep.PartitionsWritten) != 6 {
		t.Fatalf("partitions written %+v", rep.PartitionsWritten)
	}
	t.Logf("%d users in %s; ksqlDB lag logged as %v", users, time.Since(start).Round(time.Second), lags)
}

// TestInterruptedRunThenAutoRerunProducesNoKeyTwice: SIGTERM stops a run
// part-way while ksqlDB still lags; the rerun in auto mode right after
// waits for ksqlDB to aggregate everything the topic holds before it looks
// keys up, so it sends only the users the first run did not. (The rerun
// skips verification: at 50 records a second ksqlDB would take a minute
// to aggregate the rest.)
func TestInterruptedRunThenAutoRerunProducesNoKeyTwice(t *testing.T) {
	s := startStack(t, stack.Options{Users: 3000, Partitions: 3, KsqlRate: 50})
	requests, fast := slowProduce(s, 40*time.Millisecond)
	j := startJob(t, s, nil, "--kafka-properties=batch.num.messages=20", "--kafka-queue-max-messages=100",
		"--kafka-linger=1ms", "--pipeline-workers=1", "--pipeline-batch-size=20")
	waitUntil(t, "records in the topic", j, func() bool { return requests() >= 10 && stored(s.Kafka) > 100 })
	if err := j.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	first := j.wait(t)
	if first.code != backfill.ExitInterrupted || first.report.RecordsAcked == 0 {
		t.Fatalf("first attempt: exit %d, report %+v\n%s", first.code, first.report, first.stderr)
	}
	fast()
	if lag := stored(s.Kafka) - s.KsqlDB.Processed(); lag <= 0 {
		t.Fatalf("ksqlDB already holds every record (%d); the rerun would not meet a lagging table", s.KsqlDB.Processed())
	}
	again := runJob(t, s, "--pipeline-progress-interval=1s", "--ksqldb-verify=none")
	rep := again.report
	if again.code != 0 || rep.Mode != "delta" || rep.Delta == nil || rep.Delta.AlreadyPresent != first.report.RecordsAcked ||
		rep.RecordsAcked != int64(len(s.Expected()))-first.report.RecordsAcked {
		t.Fatalf("rerun: exit %d, report %+v delta %+v\n%s", again.code, rep, rep.Delta, tail(again.stderr, 3000))
	}
	if len(rep.CatchUps) != 1 || rep.CatchUps[0].Stage != "before delta lookups" || rep.CatchUps[0].Seconds < 1 {
		t.Fatalf("catch-ups %+v: the rerun must wait for ksqlDB before its lookups", rep.CatchUps)
	}
	eachKeyOnce(t, s)
}

// TestStallFailsWithExit6AndTheRetryProducesNoKeyTwice: ksqlDB's table
// query stops mid-run. The job fails with exit 6 once the lag has not
// shrunk for ksqldb.stall_timeout, and the report gives the lag per
// partition. When the query resumes (and still lags), the retry in auto
// mode produces no key a second time.
func TestStallFailsWithExit6AndTheRetryProducesNoKeyTwice(t *testing.T) {
	s := startStack(t, stack.Options{Users: 2000, Partitions: 3, KsqlRate: 400})
	const stall, progress = 3 * time.Second, time.Second
	j := startJob(t, s, nil, "--ksqldb-stall-timeout=3s", "--pipeline-progress-interval=1s")
	waitUntil(t, "ksqlDB processing", j, func() bool { return s.KsqlDB.Processed() > 200 })
	s.KsqlDB.Pause()
	paused := time.Now()
	r := j.wait(t)
	rep := r.report
	if r.code != backfill.ExitVerify || rep.ErrorKind != "verify" || rep.RecordsAcked != int64(len(s.Expected())) {
		t.Fatalf("exit %d, report %+v\n%s", r.code, rep, tail(r.stderr, 3000))
	}
	if el := time.Since(paused); el > stall+progress+5*time.Second {
		t.Errorf("the job gave up %s after ksqlDB stopped; stall_timeout is %s", el, stall)
	}
	cu := rep.CatchUps[len(rep.CatchUps)-1]
	var lag int64
	for _, p := range cu.Partitions {
		lag += p.Lag
		if p.Lag != p.Target-p.Committed || p.Lag <= 0 {
			t.Errorf("partition lag %+v", p)
		}
	}
	if cu.Status != "stalled" || cu.Lag == 0 || lag != cu.Lag || !strings.Contains(rep.Error, "made no progress") || !strings.Contains(rep.Error, "CTAS_TABLE_MIN_ORDER") {
		t.Fatalf("catch-up %+v, error %q", cu, rep.Error)
	}

	s.KsqlDB.Resume()
	again := runJob(t, s)
	if again.code != 0 || again.report.Mode != "delta" || again.report.RecordsProduced != 0 || again.report.Delta.AlreadyPresent != int64(len(s.Expected())) {
		t.Fatalf("retry: exit %d, report %+v delta %+v\n%s", again.code, again.report, again.report.Delta, tail(again.stderr, 3000))
	}
	eachKeyOnce(t, s)
}

// TestAutoNeverTakesANonConsumingQueryForAnEmptyTable: the topic holds
// records but ksqlDB's table query commits nothing. auto mode does not
// choose full; it waits, then fails with a message naming the query and
// its lag, and produces nothing.
func TestAutoNeverTakesANonConsumingQueryForAnEmptyTable(t *testing.T) {
	s := startStack(t, stack.Options{Users: 200, Partitions: 3, KsqlPaused: true})
	seed := runJob(t, s, "--mode=full", "--ksqldb-verify=none")
	if seed.code != 0 || seed.report.RecordsAcked != 200 {
		t.Fatalf("seeding the topic: exit %d, report %+v\n%s", seed.code, seed.report, seed.stderr)
	}
	r := runJob(t, s, "--ksqldb-stall-timeout=2s")
	rep := r.report
	if r.code != backfill.ExitVerify || rep.Mode != "delta" || rep.RecordsProduced != 0 || len(rep.CatchUps) != 1 ||
		rep.CatchUps[0].Stage != "before delta lookups" || rep.CatchUps[0].Lag != 200 {
		t.Fatalf("exit %d, report %+v\n%s", r.code, rep, tail(r.stderr, 3000))
	}
	for _, want := range []string{"CTAS_TABLE_MIN_ORDER_1", "200 records behind", "committed 0 of"} {
		if !strings.Contains(rep.Error, want) {
			t.Errorf("error %q does not say %q", rep.Error, want)
		}
	}
}
