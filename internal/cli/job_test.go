package cli

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/config"
)

// testConfig is a valid configuration of a run against the stubs: mode
// full, sample verification, preflight on.
func testConfig() config.Config {
	c := config.Default()
	c.Mode = config.ModeFull
	c.BigQuery.Project, c.BigQuery.Table = "p", "p.d.orders"
	c.Kafka.Brokers = []string{"broker:9092"}
	c.SchemaRegistry.URL = "http://registry:8081"
	c.KsqlDB.URL = "http://ksqldb:8088"
	return c
}

// Topics before the run: one that never held a record, and one that did.
var (
	emptyTopic = []backfill.Watermarks{{Partition: 0}, {Partition: 1}}
	heldTopic  = []backfill.Watermarks{{Partition: 0, Start: 0, End: 5}, {Partition: 1, Start: 3, End: 3}}
)

// Calls every run makes before deciding anything.
var (
	opened  = []string{"registry.New", "registry.Fetch", "kafka.New", "kafka.Partitions", "ksqldb.New", "ksqldb.Preflight"}
	written = []string{"kafka.Flush", "kafka.ReadBack", "ksqldb.CatchUp(before verification)", "ksqldb.Verify", "kafka.Close"}
	delta   = []string{"ksqldb.CatchUp(before delta lookups)", "ksqldb.NewDelta"}
)

func seq(parts ...[]string) []string { return slices.Concat(parts...) }

func TestRunDecisions(t *testing.T) {
	const rows = 11 // users 1..11: 6 odd keys the delta stub finds missing, 5 even ones present
	for _, tc := range []struct {
		name   string
		set    func(c *config.Config)
		check  bool
		before []backfill.Watermarks
		calls  []string
		// the report
		mode     string
		dryRun   bool
		acked    int64
		delta    *backfill.Delta
		verified string // the verification's mode; empty: none
		dups     string // the duplicate check's status; empty: none
	}{
		{
			name: "full writes every row and verifies after the barrier", before: heldTopic,
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New", "source.Open"}, written),
			mode:  "full", acked: rows, verified: "sample", dups: "checked",
		},
		{
			name: "auto on an empty topic is full", set: func(c *config.Config) { c.Mode = config.ModeAuto }, before: emptyTopic,
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New", "source.Open"}, written),
			mode:  "full", acked: rows, verified: "sample", dups: "checked",
		},
		{
			name: "auto on a topic that held records is delta", set: func(c *config.Config) { c.Mode = config.ModeAuto }, before: heldTopic,
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New"}, delta, []string{"source.Open"}, written),
			mode:  "delta", acked: 6, delta: &backfill.Delta{Missing: 6, AlreadyPresent: 5}, verified: "sample", dups: "checked",
		},
		{
			name: "delta on an empty topic is delta", set: func(c *config.Config) { c.Mode = config.ModeDelta }, before: emptyTopic,
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New"}, delta, []string{"source.Open"}, written),
			mode:  "delta", acked: 6, delta: &backfill.Delta{Missing: 6, AlreadyPresent: 5}, verified: "sample", dups: "checked",
		},
		{
			name: "a full dry run opens no producer and verifies nothing", set: func(c *config.Config) { c.DryRun = true },
			calls: []string{"registry.New", "registry.Fetch", "ksqldb.New", "ksqldb.Preflight", "bigquery.New", "source.Open"},
			mode:  "full", dryRun: true,
		},
		{
			name: "an auto dry run opens the producer for the offsets and writes nothing",
			set:  func(c *config.Config) { c.DryRun, c.Mode = true, config.ModeAuto }, before: heldTopic,
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New"}, delta, []string{"source.Open", "kafka.Close"}),
			mode:  "delta", dryRun: true, delta: &backfill.Delta{Missing: 6, AlreadyPresent: 5},
		},
		{
			name: "check stops after the preflight and the query's dry run", check: true,
			calls: seq(opened, []string{"bigquery.New", "source.Check", "kafka.Close"}),
		},
		{
			name: "check opens the producer even in a full dry run", set: func(c *config.Config) { c.DryRun = true }, check: true,
			calls: seq(opened, []string{"bigquery.New", "source.Check", "kafka.Close"}),
		},
		{
			name: "verification runs the preflight with ksqldb.preflight off", set: func(c *config.Config) { c.KsqlDB.Preflight = false },
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New", "source.Open"}, written),
			mode:  "full", acked: rows, verified: "sample", dups: "checked",
		},
		{
			name: "delta runs the preflight with ksqldb.preflight off and verification off",
			set: func(c *config.Config) {
				c.Mode, c.KsqlDB.Preflight, c.KsqlDB.Verify = config.ModeDelta, false, config.VerifyNone
			},
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New"}, delta, []string{"source.Open", "kafka.Flush", "kafka.ReadBack", "kafka.Close"}),
			mode:  "delta", acked: 6, delta: &backfill.Delta{Missing: 6, AlreadyPresent: 5}, dups: "checked",
		},
		{
			name: "no preflight when neither the setting, verification nor delta asks for it",
			set:  func(c *config.Config) { c.KsqlDB.Preflight, c.KsqlDB.Verify = false, config.VerifyNone },
			calls: []string{"registry.New", "registry.Fetch", "kafka.New", "kafka.Partitions", "ksqldb.New",
				"kafka.EndOffsets", "bigquery.New", "source.Open", "kafka.Flush", "kafka.ReadBack", "kafka.Close"},
			mode: "full", acked: rows, dups: "checked",
		},
		{
			name: "without ksqldb.url no ksqlDB at all",
			set: func(c *config.Config) {
				c.KsqlDB.URL, c.KsqlDB.Preflight, c.KsqlDB.Verify = "", false, config.VerifyNone
			},
			calls: []string{"registry.New", "registry.Fetch", "kafka.New", "kafka.Partitions",
				"kafka.EndOffsets", "bigquery.New", "source.Open", "kafka.Flush", "kafka.ReadBack", "kafka.Close"},
			mode: "full", acked: rows, dups: "checked",
		},
		{
			name: "full verification", set: func(c *config.Config) { c.KsqlDB.Verify = config.VerifyFull },
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New", "source.Open"}, written),
			mode:  "full", acked: rows, verified: "full", dups: "checked",
		},
		{
			name: "with kafka.run_header off the duplicate check is skipped", set: func(c *config.Config) { c.Kafka.RunHeader = false },
			calls: seq(opened, []string{"kafka.EndOffsets", "bigquery.New", "source.Open", "kafka.Flush",
				"ksqldb.CatchUp(before verification)", "ksqldb.Verify", "kafka.Close"}),
			mode: "full", acked: rows, verified: "sample", dups: "skipped",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			if tc.set != nil {
				tc.set(&c)
			}
			w := &world{rows: rows, before: tc.before}
			rep, err := w.run(t, c, tc.check)
			if err != nil {
				t.Fatalf("run: %v\ncalls %v", err, w.called())
			}
			if got := w.called(); !slices.Equal(got, tc.calls) {
				t.Errorf("calls\n %v\nwant\n %v", got, tc.calls)
			}
			if rep.Mode != tc.mode || rep.RecordsAcked != tc.acked || (w.topic != nil && w.topic.Deliveries().Produced != tc.acked) {
				t.Errorf("mode %q, %d records acked; want %q, %d", rep.Mode, rep.RecordsAcked, tc.mode, tc.acked)
			}
			if !tc.check && rep.DryRun != tc.dryRun {
				t.Errorf("report dry_run %v, want %v", rep.DryRun, tc.dryRun)
			}
			if tc.check && (rep.RowsRead != 0 || rep.Mode != "" || len(rep.CatchUps) != 0) {
				t.Errorf("check went past the preflight: %+v", rep)
			}
			if tc.check && (rep.SourceCheck == nil || rep.SourceCheck.BytesProcessed != stubBytes) {
				t.Errorf("check reported %+v, want the source's dry run", rep.SourceCheck)
			}
			if fmt.Sprint(rep.Delta) != fmt.Sprint(tc.delta) {
				t.Errorf("delta %+v, want %+v", rep.Delta, tc.delta)
			}
			if tc.delta != nil && rep.RowsSkipped[string(backfill.SkipInTable)] != tc.delta.AlreadyPresent {
				t.Errorf("rows skipped %v, want %d in the table", rep.RowsSkipped, tc.delta.AlreadyPresent)
			}
			switch {
			case tc.verified == "" && rep.Verification != nil:
				t.Errorf("verified %+v, want no verification", rep.Verification)
			case tc.verified != "" && (rep.Verification == nil || rep.Verification.Mode != tc.verified || rep.Verification.Observed != tc.acked):
				t.Errorf("verification %+v, want mode %s over %d records", rep.Verification, tc.verified, tc.acked)
			}
			if tc.verified == "full" && rep.Verification.Checked != tc.acked {
				t.Errorf("full verification checked %d keys, want %d", rep.Verification.Checked, tc.acked)
			}
			dups := ""
			if rep.Duplicates != nil {
				dups = rep.Duplicates.Status
			}
			if dups != tc.dups {
				t.Errorf("duplicates %+v, want status %q", rep.Duplicates, tc.dups)
			}
			if w.topic != nil && w.topic.closed.Load() != 1 {
				t.Errorf("the producer was closed %d times", w.topic.closed.Load())
			}
		})
	}
}

// The barriers wait for the right offsets: delta's for the topic's end
// offsets before the run, verification's for the offset after the last
// record the run wrote on each partition.
func TestCatchUpTargets(t *testing.T) {
	c := testConfig()
	c.Mode = config.ModeDelta
	w := &world{rows: 11, before: heldTopic}
	rep, err := w.run(t, c, false)
	if err != nil {
		t.Fatal(err)
	}
	// 6 odd keys produced, alternating over the two partitions from 5 and 3.
	want := map[string]map[int32]int64{
		"before delta lookups": {0: 5, 1: 3},
		"before verification":  {0: 5 + 3, 1: 3 + 3},
	}
	if fmt.Sprint(w.targets) != fmt.Sprint(want) {
		t.Errorf("catch-up targets %v, want %v", w.targets, want)
	}
	if !w.markers["before delta lookups"] || !w.markers["before verification"] {
		t.Errorf("barriers that can look through transaction markers: %v; want both", w.markers)
	}
	if len(rep.CatchUps) != 2 || rep.CatchUps[0].Stage != "before delta lookups" || rep.CatchUps[1].Stage != "before verification" {
		t.Errorf("report's catch-ups %+v", rep.CatchUps)
	}
	if w.want.Partitions != testPartitions || w.want.ValueColumn != "ORDER_ID" || w.want.KeySubject != c.Kafka.Topic+"-key" || w.want.KeySchemaID != 1 {
		t.Errorf("preflight expected %+v", w.want)
	}
	pw := rep.PartitionsWritten
	if len(pw) != 2 || pw[0].EndOffsetBefore != 5 || pw[0].Acked != 3 || pw[1].EndOffsetBefore != 3 || pw[1].Acked != 3 {
		t.Errorf("partitions written %+v", pw)
	}
	if len(w.gaps) != 2 || len(w.gaps[0])+len(w.gaps[1]) != 0 {
		t.Errorf("read back %v, want no gaps on either partition", w.gaps)
	}
	if got := w.verified.Observed(); got != 6 {
		t.Errorf("the recorder saw %d records, want the 6 produced", got)
	}
}

// verify=full refuses, before a row is read, a result above its memory
// bound: nothing is produced or verified, and the producer is closed.
func TestFullVerificationBoundStopsTheRunAtOpen(t *testing.T) {
	c := testConfig()
	c.KsqlDB.Verify = config.VerifyFull
	w := &world{rows: 10, reportedRows: ksqldb.MaxFullKeys + 1}
	rep, err := w.run(t, c, false)
	if backfill.KindOf(err) != backfill.KindConfig || !strings.Contains(err.Error(), "ksqldb.verify=sample") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
	want := seq(opened, []string{"kafka.EndOffsets", "bigquery.New", "source.Open", "kafka.Close"})
	if got := w.called(); !slices.Equal(got, want) {
		t.Errorf("calls\n %v\nwant\n %v", got, want)
	}
	if rep.RowsRead != 0 || w.topic.Deliveries().Produced != 0 || rep.Verification != nil {
		t.Errorf("rows read %d, produced %d, verification %+v", rep.RowsRead, w.topic.Deliveries().Produced, rep.Verification)
	}

	c.KsqlDB.Verify = config.VerifySample // no bound
	if _, err := (&world{rows: 10, reportedRows: 10}).run(t, c, false); err != nil {
		t.Fatal(err)
	}
}

// Whatever step fails, the run stops there, returns that step's error and
// closes the producer once it opened it, last.
func TestFailuresStopTheRunAndCloseTheProducerOnce(t *testing.T) {
	verifyFailed := backfill.Errorf(backfill.KindVerify, "3 keys missing")
	for _, tc := range []struct {
		fail   string // the call that fails
		err    error  // with this error; nil: errFail
		mode   config.Mode
		kind   backfill.Kind
		last   string // the last call before kafka.Close
		closed bool
	}{
		{fail: "registry.Fetch", kind: backfill.KindUnavailable, last: "registry.Fetch"},
		{fail: "kafka.New", kind: backfill.KindUnavailable, last: "kafka.New"},
		{fail: "kafka.Partitions", kind: backfill.KindUnavailable, last: "kafka.Partitions", closed: true},
		{fail: "ksqldb.New", kind: backfill.KindConfig, last: "ksqldb.New", closed: true},
		{fail: "ksqldb.Preflight", err: backfill.Errorf(backfill.KindContract, "no such table"), kind: backfill.KindContract, last: "ksqldb.Preflight", closed: true},
		{fail: "kafka.EndOffsets", kind: backfill.KindUnavailable, last: "kafka.EndOffsets", closed: true},
		{fail: "ksqldb.CatchUp(before delta lookups)", mode: config.ModeDelta, kind: backfill.KindUnavailable, last: "ksqldb.CatchUp(before delta lookups)", closed: true},
		{fail: "source.Open", err: backfill.Errorf(backfill.KindSource, "query failed"), kind: backfill.KindSource, last: "source.Open", closed: true},
		{fail: "kafka.Flush", kind: backfill.KindProduce, last: "kafka.ReadBack", closed: true}, // the duplicate check runs after a failed produce
		{fail: "ksqldb.CatchUp(before verification)", kind: backfill.KindUnavailable, last: "ksqldb.CatchUp(before verification)", closed: true},
		{fail: "ksqldb.Verify", err: verifyFailed, kind: backfill.KindVerify, last: "ksqldb.Verify", closed: true},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			c := testConfig()
			if tc.mode != "" {
				c.Mode = tc.mode
			}
			w := &world{rows: 4, before: heldTopic, fail: map[string]error{tc.fail: tc.err}}
			_, err := w.run(t, c, false)
			if err == nil || backfill.KindOf(err) != tc.kind {
				t.Fatalf("error %v (kind %v), want kind %v", err, backfill.KindOf(err), tc.kind)
			}
			calls := w.called()
			if tc.closed {
				if calls[len(calls)-1] != "kafka.Close" || w.topic.closed.Load() != 1 {
					t.Fatalf("calls %v: want one kafka.Close, last", calls)
				}
				calls = calls[:len(calls)-1]
			} else if slices.Contains(calls, "kafka.Close") {
				t.Fatalf("calls %v: closed a producer it never opened", calls)
			}
			if calls[len(calls)-1] != tc.last {
				t.Errorf("calls %v: want the run to stop at %s", calls, tc.last)
			}
		})
	}
}

// A failed delivery stops the run before the verification, but the
// duplicate check still runs: records were acknowledged, and some may have
// been stored twice.
func TestFailedDeliveryStillChecksDuplicatesButNotTheTable(t *testing.T) {
	w := &world{rows: 4, failDelivery: "broker gone"}
	rep, err := w.run(t, testConfig(), false)
	if backfill.KindOf(err) != backfill.KindProduce || rep.RecordsFailed == 0 {
		t.Fatalf("kind %v, %d failed: %v", backfill.KindOf(err), rep.RecordsFailed, err)
	}
	want := seq(opened, []string{"kafka.EndOffsets", "bigquery.New", "source.Open", "kafka.Flush", "kafka.ReadBack", "kafka.Close"})
	if got := w.called(); !slices.Equal(got, want) {
		t.Errorf("calls\n %v\nwant\n %v", got, want)
	}
	if rep.Duplicates == nil || rep.Duplicates.Status != "checked" || rep.Verification != nil {
		t.Errorf("duplicates %+v, verification %+v; want a checked duplicate report and no verification", rep.Duplicates, rep.Verification)
	}
}

// An interrupted run does not read back: the duplicate report says it
// was skipped and why.
func TestInterruptedRunSkipsTheDuplicateCheck(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	j := &job{cfg: testConfig(), log: slog.New(slog.DiscardHandler), rep: &backfill.Report{}}
	d := j.readBack(ctx, &stubTopic{}, nil, ksqldb.Facts{})
	if d.Status != "skipped" || !strings.Contains(d.Reason, "interrupted") {
		t.Errorf("duplicates %+v after an interruption", d)
	}
}

// A duplicate check that fails is reported, not fatal: the run goes on to
// verify.
func TestReadBackFailureIsReportedAndTheRunVerifies(t *testing.T) {
	w := &world{rows: 4, fail: map[string]error{"kafka.ReadBack": nil}}
	rep, err := w.run(t, testConfig(), false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Duplicates == nil || rep.Duplicates.Error == "" || rep.Verification == nil || rep.Verification.Status != "passed" {
		t.Fatalf("duplicates %+v, verification %+v", rep.Duplicates, rep.Verification)
	}
	if got := w.called(); !slices.Equal(got[len(got)-len(written):], written) {
		t.Errorf("calls %v, want them to end %v", got, written)
	}
}
