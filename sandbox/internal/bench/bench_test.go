package bench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/config"
	"github.com/twmb/franz-go/pkg/kgo"
)

// actAsChild makes the test binary act as the bench's child: Main re-executes
// os.Executable(), which under go test is this binary.
const actAsChild = "BENCH_TEST_ACT_AS_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(actAsChild) != "" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// testBroker starts a retaining broker, closed when the test ends.
func testBroker(t *testing.T) *broker {
	t.Helper()
	b, err := startBroker(BrokerRetain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.close)
	return b
}

// The scenarios run end to end on a few rows against one broker, as the
// parent runs them: every row is acknowledged and in the broker's log of the
// topic re-created for the run. No timings are asserted; the bench prints
// them.
func TestScenariosDeliverEveryRow(t *testing.T) {
	ctx := context.Background()
	b := testBroker(t)
	for _, tc := range []struct {
		scenario string
		rows     int64
	}{
		{ScenarioLimit, 3000}, {ScenarioJob, 3000}, {ScenarioJobDiscard, 3000}, {ScenarioVerifyFull, 3000}, {ScenarioSeed, 3}, {ScenarioJob, 2000},
		{ScenarioJobStorage, 3000}, {ScenarioReadStorage, 3000}, {ScenarioReadIterator, 3000},
		{ScenarioReadREST, 45000}, {ScenarioReadRESTUnpaged, 3000},
	} {
		if err := b.resetTopic(ctx); err != nil {
			t.Fatal(err)
		}
		res, err := Run(ctx, RunOptions{Scenario: tc.scenario, Rows: tc.rows, Brokers: b.addrs()})
		if err != nil {
			t.Fatalf("%s: %v", tc.scenario, err)
		}
		if res.Delivered != tc.rows || res.Rows != tc.rows || res.PeakRSSKiB <= 0 || res.Seconds <= 0 {
			t.Errorf("%s: result %+v", tc.scenario, res)
		}
		want := tc.rows
		if !needsBroker(tc.scenario) {
			want = 0
		}
		if end, err := endOffsets(ctx, b.addrs()); err != nil || end != want {
			t.Errorf("%s: the broker's log holds %d records (%v), want %d", tc.scenario, end, err, want)
		}
	}
	// Run by hand without a broker address, a child starts its own.
	if res, err := Run(ctx, RunOptions{Scenario: ScenarioLimit, Rows: 1000}); err != nil || res.Delivered != 1000 {
		t.Errorf("limit with its own broker: %+v, %v", res, err)
	}
	if _, err := Run(ctx, RunOptions{Scenario: "nope", Rows: 1, Brokers: b.addrs()}); err == nil {
		t.Error("an unknown scenario must fail")
	}
}

// The topic re-created between runs keeps the broker's retention: kfake
// trims it to log.retention.bytes per partition.
func TestRecreatedTopicKeepsRetention(t *testing.T) {
	ctx := context.Background()
	b := testBroker(t)
	if err := b.resetTopic(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs()...), kgo.DefaultProduceTopic(Topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	value := make([]byte, 64<<10)
	const records = 2 * retentionBytes / (64 << 10) // twice the retention, one batch each
	for range records {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	b.c.ApplyRetention()
	start, err := listOffsets(ctx, b.cl, -2)
	if err != nil {
		t.Fatal(err)
	}
	end, err := listOffsets(ctx, b.cl, -1)
	if err != nil {
		t.Fatal(err)
	}
	if end[0] != records || start[0] < records/3 {
		t.Errorf("partition 0 holds offsets %d to %d after retention, want the oldest of %d trimmed", start[0], end[0], records)
	}
}

// The parent starts the broker, runs every scenario in a child process (this
// test binary, see TestMain) and prints the table and the verdicts.
func TestMainRunsScenariosInChildren(t *testing.T) {
	t.Setenv(actAsChild, "1")
	var out, errOut bytes.Buffer
	if code := Main([]string{"-rows=2000", "-pairs=1", "-seed-rows=3"}, &out, &errOut); code != 0 {
		t.Fatalf("Main = %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{
		"broker: kfake in the bench's parent process",
		"broker process (the bench parent) peak RSS: ",
		"broker CPU s",
		"job/limit at 2 k rows: ",
		"job-storage/limit at 2 k rows: ",
		"read stage CPU s per M rows at 2 k rows: direct reader ",
		"read stage at 2 k rows, rows/s and peak RSS: read-storage ",
		"job at 2 k rows / seed-like: ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 11 {
			rows[f[0]] = true
		}
	}
	for _, s := range Scenarios {
		if !rows[s] {
			t.Errorf("the table lacks a %s row:\n%s", s, out.String())
		}
	}
}

func TestRingHoldsTheJobsBytes(t *testing.T) {
	codec, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	const rows = 3 * ringSize
	r, err := newRing(codec, rows)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.Bind(backfill.Mapping{KeyColumn: config.Default().Mapping.KeyColumn}, backfilltest.OrderColumns)
	if err != nil {
		t.Fatal(err)
	}
	w := enc.NewWriter()
	for _, j := range []int64{0, 1, ringSize - 1} {
		wantK, wantV, _, err := w.Encode(backfilltest.DefaultRow(j*3, nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int64{j, j + ringSize} {
			k, v := r.at(i)
			if !bytes.Equal(k, wantK) || !bytes.Equal(v, wantV) {
				t.Errorf("ring entry %d: %x %x, want row %d's %x %x", i, k, v, j*3, wantK, wantV)
			}
		}
	}
}

func TestPlanAndFlags(t *testing.T) {
	plan, err := makePlan([]string{"limit", "job", "job-discard", "seed-like"}, []int64{10, 20}, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []planned{{"limit", 10}, {"job", 10}, {"job-discard", 10}, {"job", 10}, {"limit", 10},
		{"limit", 20}, {"job", 20}, {"job-discard", 20}, {"job", 20}, {"limit", 20}, {"seed-like", 5}}
	if len(plan) != len(want) {
		t.Fatalf("plan %v, want %v", plan, want)
	}
	for i := range want {
		if plan[i] != want[i] {
			t.Fatalf("plan %v, want %v", plan, want)
		}
	}
	if m := median([]float64{0.8, 1.2, 0.9}); m != 0.9 {
		t.Errorf("median = %v, want 0.9", m)
	}
	if _, err := makePlan([]string{"jobb"}, []int64{1}, 1, 1); err == nil {
		t.Error("an unknown scenario in -only must fail")
	}
	if _, err := parseRows("1000,x"); err == nil {
		t.Error("a bad row count must fail")
	}
	var stderr bytes.Buffer
	if code := Main([]string{"-only=job", "-cpuprofile=x"}, &stderr, &stderr); code != 2 || !strings.Contains(stderr.String(), "exactly one run") {
		t.Errorf("profiling two runs: code %d, %s", code, stderr.String())
	}
	tu := Tuning{Workers: 2, Linger: 5e6, Properties: propertyList{"a=b"}}
	if got := strings.Join(tu.args(), " "); got != "-workers=2 -linger=5ms -property=a=b" {
		t.Errorf("tuning args = %q", got)
	}
	if c := tu.apply(); c.Pipeline.Workers != 2 || c.Kafka.Linger != 5e6 || c.Kafka.Properties["a"] != "b" || c.Pipeline.BatchSize != config.Default().Pipeline.BatchSize {
		t.Errorf("tuning apply = %+v %+v", c.Pipeline, c.Kafka)
	}
}

func TestReportNamesTheTargets(t *testing.T) {
	results := []Result{
		{Scenario: ScenarioLimit, Rows: 1000000, Seconds: 2, UserCPU: 2, PeakRSSKiB: 100 << 10},
		{Scenario: ScenarioJob, Rows: 1000000, Seconds: 2.1, UserCPU: 2.2, PeakRSSKiB: 100 << 10},
		{Scenario: ScenarioJob, Rows: 1000000, Seconds: 2.5, UserCPU: 2.6, PeakRSSKiB: 90 << 10},
		{Scenario: ScenarioLimit, Rows: 1000000, Seconds: 2, UserCPU: 2, PeakRSSKiB: 110 << 10},
		{Scenario: ScenarioLimit, Rows: 10000000, Seconds: 20, UserCPU: 20, PeakRSSKiB: 105 << 10},
		{Scenario: ScenarioJob, Rows: 10000000, Seconds: 21, UserCPU: 20, PeakRSSKiB: 120 << 10},
		{Scenario: ScenarioSeed, Rows: 100, Seconds: 2},
	}
	var out bytes.Buffer
	printReport(&out, results, BrokerRetain, 50<<10, Tuning{})
	for _, want := range []string{
		"job/limit at 1 M rows: 0.88, median of 2 back-to-back pairs (0.95, 0.80) (target >= 0.9: NOT met)",
		"job/limit CPU s per row at 1 M rows: 1.20, median of the same pairs (1.10, 1.30)",
		"job/limit at 10 M rows: 0.95, median of 1 back-to-back pairs (0.95) (target >= 0.9: met)",
		"job peak RSS at 10 M vs 1 M rows: 120.0 vs 95.0 MiB (+26.3%), medians of 1 and 2 runs (ranges 120.0–120.0 and 90.0–100.0 MiB) (target within 10% and under 200 MiB: NOT met)",
		"job at 10 M rows / seed-like: 9524x (target >= 1000x: met",
		"100 M rows take",
		"broker CPU s",
		"broker process (the bench parent) peak RSS: 50.0 MiB",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
