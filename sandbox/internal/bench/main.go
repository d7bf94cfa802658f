package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// resultPrefix starts the line on which a child reports its Result.
const resultPrefix = "BENCH-RESULT "

// Default row counts.
const (
	defaultRows     = "1000000,10000000"
	defaultSeedRows = 2000
	quickRows       = 100000
	quickSeedRows   = 200
)

// Main runs the bench command: with -scenario, one scenario in this
// process (the child); otherwise every planned scenario, each in its own
// child process against one kfake broker that runs in this process (the
// parent), then the table. It returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rowsFlag := fs.String("rows", defaultRows, "comma-separated row counts for the limit and job scenarios")
	seedRows := fs.Int64("seed-rows", defaultSeedRows, "rows for the seed-like baseline (its rate is extrapolated)")
	quick := fs.Bool("quick", false, fmt.Sprintf("smoke run: %d rows, %d seed-like rows", quickRows, quickSeedRows))
	only := fs.String("only", strings.Join(Scenarios, ","), "comma-separated scenarios to run: "+strings.Join(Scenarios, ", "))
	brokerMode := fs.String("broker", BrokerRetain, "kfake storage: retain (bounded retention), keep (everything in memory) or blackhole")
	pairs := fs.Int("pairs", 7, "run the limit and job scenarios this many times each, back to back, per row count; ratios and RSS are medians")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed section (needs exactly one scenario and one row count)")
	memProfile := fs.String("memprofile", "", "write an allocation profile (needs exactly one scenario and one row count)")
	var tuning Tuning
	tuning.register(fs)
	scenario := fs.String("scenario", "", "run this one scenario in this process and print its result (used by the parent)")
	bqREST := fs.String("bigquery-rest", "", "with -scenario: the parent's BigQuery REST double (empty: start the doubles in this process)")
	bqStorage := fs.String("bigquery-storage", "", "with -scenario: the parent's Storage Read API double")
	brokersFlag := fs.String("brokers", "", "with -scenario: host:port of the broker to produce to (the parent's, whose "+Topic+" must be empty);\nempty starts a kfake broker in this process, whose CPU and memory then count in the scenario's figures")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bench [flags]\n\nMeasures rows/s, CPU seconds and peak RSS of the backfill, each scenario in its own child process,\nagainst one kfake broker in this (the parent) process.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	rows, err := parseRows(*rowsFlag)
	if err != nil {
		fmt.Fprintf(stderr, "bench: -rows: %v\n", err)
		return 2
	}
	if *quick {
		rows, *seedRows = []int64{quickRows}, quickSeedRows
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *scenario != "" {
		if len(rows) != 1 {
			fmt.Fprintf(stderr, "bench: -scenario runs one row count, got %v\n", rows)
			return 2
		}
		var brokers []string
		if *brokersFlag != "" {
			brokers = strings.Split(*brokersFlag, ",")
		}
		res, err := Run(ctx, RunOptions{Scenario: *scenario, Rows: rows[0], Brokers: brokers, Broker: *brokerMode,
			BigQuery: BigQueryEndpoints{REST: *bqREST, Storage: *bqStorage}, CPUProfile: *cpuProfile, MemProfile: *memProfile, Tuning: tuning})
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s, %d rows: %v\n", *scenario, rows[0], err)
			return 1
		}
		b, _ := json.Marshal(res)
		fmt.Fprintf(stdout, "%s%s\n", resultPrefix, b)
		return 0
	}
	if *brokersFlag != "" {
		fmt.Fprintln(stderr, "bench: -brokers needs -scenario; the parent runs its own broker")
		return 2
	}

	plan, err := makePlan(strings.Split(*only, ","), rows, *seedRows, max(*pairs, 1))
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	if (*cpuProfile != "" || *memProfile != "") && len(plan) != 1 {
		fmt.Fprintf(stderr, "bench: -cpuprofile and -memprofile need exactly one run (set -only to one scenario and -rows to one count); the plan has %d\n", len(plan))
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	var b *broker
	if slices.ContainsFunc(plan, func(p planned) bool { return needsBroker(p.scenario) }) {
		if b, err = startBroker(*brokerMode); err != nil {
			fmt.Fprintf(stderr, "bench: %v\n", err)
			return 1
		}
		defer b.close()
	}
	var bqd *bigQueryDoubles
	defer func() {
		if bqd != nil {
			bqd.close()
		}
	}()
	var results []Result
	for _, p := range plan {
		childArgs := []string{"-scenario=" + p.scenario, "-rows=" + strconv.FormatInt(p.rows, 10), "-broker=" + *brokerMode}
		if needsBroker(p.scenario) {
			if err := b.resetTopic(ctx); err != nil {
				fmt.Fprintf(stderr, "bench: %s, %d rows: %v\n", p.scenario, p.rows, err)
				return 1
			}
			childArgs = append(childArgs, "-brokers="+strings.Join(b.addrs(), ","))
		}
		if usesBigQuery(p.scenario) {
			// The doubles serve one result size; a new row count gets new ones.
			if bqd != nil && bqd.rows != p.rows {
				bqd.close()
				bqd = nil
			}
			if bqd == nil {
				if bqd, err = startBigQuery(p.rows); err != nil {
					fmt.Fprintf(stderr, "bench: %v\n", err)
					return 1
				}
			}
			e := bqd.endpoints()
			childArgs = append(childArgs, "-bigquery-rest="+e.REST, "-bigquery-storage="+e.Storage)
		}
		childArgs = append(childArgs, tuning.args()...)
		if *cpuProfile != "" {
			childArgs = append(childArgs, "-cpuprofile="+*cpuProfile)
		}
		if *memProfile != "" {
			childArgs = append(childArgs, "-memprofile="+*memProfile)
		}
		fmt.Fprintf(stderr, "bench: %-17s %9d rows (load %s) ...\n", p.scenario, p.rows, loadAverage())
		// This process is idle but for the broker while the child runs:
		// its CPU over the run is the broker's.
		u0, s0 := cpuTime()
		res, err := runChild(ctx, exe, childArgs, stderr)
		u1, s1 := cpuTime()
		if err == nil && (needsBroker(p.scenario) || usesBigQuery(p.scenario)) {
			res.BrokerCPU = (u1 - u0 + s1 - s0).Seconds()
		}
		if err == nil && needsBroker(p.scenario) {
			err = b.deleteTopic(ctx) // frees the log before the next run
		}
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s, %d rows: %v\n", p.scenario, p.rows, err)
			return 1
		}
		fmt.Fprintf(stderr, "bench: %-17s %9d rows: %.2fs, %.0f rows/s\n", p.scenario, p.rows, res.Seconds, res.RowsPerSecond())
		results = append(results, res)
	}
	var brokerRSS int64
	if b != nil {
		brokerRSS, _ = peakRSSKiB()
	}
	printReport(stdout, results, *brokerMode, brokerRSS, tuning)
	return 0
}

// needsBroker reports whether a scenario produces to the broker.
func needsBroker(scenario string) bool {
	return scenario != ScenarioJobDiscard && scenario != ScenarioVerifyFull && !slices.Contains(readScenarios, scenario)
}

type planned struct {
	scenario string
	rows     int64
}

// makePlan orders the runs: for each row count, groups of the limit, the
// job and the job reading BigQuery's Storage Read API, back to back (so
// that load drifts hit them alike), the limit first in even groups and the
// job-storage first in odd ones (so that neither always follows the
// other's clean-up); the discarding job, the full verification recorder
// and the read-stage scenarios once; then the seed-like baseline once.
func makePlan(only []string, rows []int64, seedRows int64, pairs int) ([]planned, error) {
	want := map[string]bool{}
	for _, s := range only {
		s = strings.TrimSpace(s)
		known := false
		for _, k := range Scenarios {
			known = known || k == s
		}
		if !known {
			return nil, fmt.Errorf("unknown scenario %q in -only (want %s)", s, strings.Join(Scenarios, ", "))
		}
		want[s] = true
	}
	var plan []planned
	for _, n := range rows {
		for i := range pairs {
			order := append([]string{ScenarioLimit, ScenarioJob, ScenarioJobStorage, ScenarioJobDiscard, ScenarioVerifyFull}, readScenarios...)
			if i%2 == 1 {
				order[0], order[2] = ScenarioJobStorage, ScenarioLimit
			}
			for _, s := range order {
				once := s == ScenarioJobDiscard || s == ScenarioVerifyFull || slices.Contains(readScenarios, s)
				if want[s] && (i == 0 || !once) {
					plan = append(plan, planned{s, n})
				}
			}
		}
	}
	if want[ScenarioSeed] {
		plan = append(plan, planned{ScenarioSeed, seedRows})
	}
	return plan, nil
}

func parseRows(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive row count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// runChild runs one scenario in a child process and returns its result.
func runChild(ctx context.Context, exe string, args []string, stderr io.Writer) (Result, error) {
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	// As in the container image and the Job: fewer glibc malloc arenas keep
	// librdkafka's cross-thread frees from growing RSS with the row count,
	// and the Job's GOMEMLIMIT (k8s/base/job.yaml) paces Go's collector.
	cmd.Env = append(os.Environ(), "MALLOC_ARENA_MAX=2", "GOMEMLIMIT=384MiB")
	cmd.WaitDelay = 30 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	err := cmd.Run()
	var res Result
	found := false
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
			if jerr := json.Unmarshal([]byte(line), &res); jerr != nil {
				return res, fmt.Errorf("parsing the child's result: %w", jerr)
			}
			found = true
		}
	}
	if err != nil {
		return res, fmt.Errorf("child %s: %w", strings.Join(args, " "), err)
	}
	if !found {
		return res, fmt.Errorf("child %s printed no result", strings.Join(args, " "))
	}
	return res, nil
}

// machine describes where the figures come from.
func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs (GOMAXPROCS %d), %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
}
