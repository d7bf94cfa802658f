package bench

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
)

// Targets from the performance issue.
const (
	targetJobOverLimit = 0.9
	targetRSSGrowth    = 0.10
	targetRSSMiB       = 200
	// targetReadCPU is the read stage's CPU s per million rows.
	targetReadCPU = 0.05
	// jobMemoryLimitMiB is k8s/base/job.yaml's memory limit.
	jobMemoryLimitMiB = 512
	maxFullVerifyRows = ksqldb.MaxFullKeys
	targetOverSeed    = 1000
	referenceRows     = 100_000_000 // the production backfill's size, for the "100 M rows" column
)

var descriptions = map[string]string{
	ScenarioLimit:           "raw produce of the job's pre-encoded records (key, value, and the run header unless -no-run-header), one goroutine (no source, no Avro)",
	ScenarioJob:             "backfill.Pipeline: in-memory backfilltest.Source, mapping, Avro, errgroup, delivery accounting",
	ScenarioJobDiscard:      "the same pipeline against a discarding producer: the job alone, no librdkafka, no broker",
	ScenarioVerifyFull:      "job-discard with ksqldb.verify=full's recorder keeping every key, then its sorted keys: the memory full verification needs",
	ScenarioJobStorage:      "the job reading the query result through backfill/bigquery's Storage Read API reader from the doubles in the parent (BigQuery's Arrow framing, 4 streams), then the same pipeline and producer as job",
	ScenarioReadStorage:     "the read stage alone: backfill/bigquery's direct reader (query job, read session, Arrow columns), rows dropped",
	ScenarioReadIterator:    "the read stage alone: the client library's RowIterator over the same Storage Read API double (EnableStorageReadClient, job.Read)",
	ScenarioReadREST:        "the read stage alone over REST (read_api=rest): backfill/bigquery's reader paging jobs.getQueryResults from the REST double, bigquery.DefaultRESTPageRows rows per page",
	ScenarioReadRESTUnpaged: "the same reader asking for no row limit per page: each reply as full as BigQuery's 10 MB allows",
	ScenarioSeed:            "one record at a time, waiting for its delivery report (the seed's per-row INSERT … VALUES); rate extrapolated",
}

// printReport prints the table and the ratios against the targets.
// brokerRSSKiB is the peak RSS of the process that ran the broker (the
// bench parent), 0 if none ran.
func printReport(w io.Writer, results []Result, brokerMode string, brokerRSSKiB int64, t Tuning) {
	fmt.Fprintf(w, "machine: %s, load average now %s\n", machine(), loadAverage())
	fmt.Fprintf(w, "broker: kfake in the bench's parent process, shared by every scenario, 1 broker, %d partitions of %s (deleted and re-created for each run), mode %q",
		Partitions, Topic, brokerMode)
	if brokerMode == BrokerRetain {
		fmt.Fprintf(w, " (log.segment.bytes=%d, log.retention.bytes=%d per partition, retention applied every %s)", segmentBytes, retentionBytes, retentionEvery)
	}
	if brokerRSSKiB > 0 {
		fmt.Fprintf(w, "\nbroker process (the bench parent) peak RSS: %.1f MiB, over all runs", float64(brokerRSSKiB)/1024)
	}
	fmt.Fprintf(w, "\nproducer: backfill/kafka, config.Default() settings with overrides: %s\n  (%s)\n", t, producerSummary(t))
	fmt.Fprintf(w, "pipeline: workers=%d batch_size=%d\n\n", t.apply().Pipeline.Workers, t.apply().Pipeline.BatchSize)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trows\tseconds\trows/s\tCPU s\tCPU s/M rows\tbroker CPU s\tpeak RSS MiB\tGo heap MiB\tload1\t100 M rows take\t")
	for _, r := range results {
		rows := fmt.Sprint(r.Rows)
		eta := "-"
		if rps := r.RowsPerSecond(); rps > 0 {
			eta = roundDuration(time.Duration(float64(referenceRows) / rps * float64(time.Second)))
		}
		if r.Scenario == ScenarioSeed {
			eta += " (extrap.)"
		}
		brokerCPU := "-"
		if needsBroker(r.Scenario) || usesBigQuery(r.Scenario) {
			brokerCPU = fmt.Sprintf("%.2f", r.BrokerCPU)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.0f\t%.2f\t%.2f\t%s\t%.1f\t%.1f\t%s\t%s\t\n", r.Scenario, rows, r.Seconds, r.RowsPerSecond(),
			r.CPUSeconds(), r.CPUSeconds()/float64(r.Rows)*1e6, brokerCPU, r.PeakRSSMiB(), float64(r.GoHeapKiB)/1024, r.Load1, eta)
	}
	tw.Flush()
	fmt.Fprintln(w)

	runs := map[string][]Result{}
	var counts []int64
	for _, r := range results {
		if r.Scenario != ScenarioSeed && !containsRows(counts, r.Rows) {
			counts = append(counts, r.Rows)
		}
		runs[key(r.Scenario, r.Rows)] = append(runs[key(r.Scenario, r.Rows)], r)
	}
	// byKey holds, per scenario and row count, the run with the median rows/s.
	byKey := map[string]Result{}
	for k, rs := range runs {
		byKey[k] = medianRun(rs)
	}
	for _, n := range counts {
		for _, job := range []string{ScenarioJob, ScenarioJobStorage} {
			jobs, limits := runs[key(job, n)], runs[key(ScenarioLimit, n)]
			if len(jobs) == 0 || len(limits) == 0 {
				continue
			}
			var ratios, cpu []float64
			for i := range min(len(jobs), len(limits)) {
				ratios = append(ratios, jobs[i].RowsPerSecond()/limits[i].RowsPerSecond())
				cpu = append(cpu, cpuPerRow(jobs[i])/cpuPerRow(limits[i]))
			}
			ratio := median(ratios)
			fmt.Fprintf(w, "%s/limit at %s rows: %.2f, median of %d back-to-back pairs %s (target >= %.1f: %s)\n",
				job, human(n), ratio, len(ratios), fmtRatios(ratios), targetJobOverLimit, verdict(ratio >= targetJobOverLimit))
			fmt.Fprintf(w, "  %s/limit CPU s per row at %s rows: %.2f, median of the same pairs %s\n", job, human(n), median(cpu), fmtRatios(cpu))
		}
		direct, client := runs[key(ScenarioReadStorage, n)], runs[key(ScenarioReadIterator, n)]
		if len(direct) > 0 && len(client) > 0 {
			d, c := medianRun(direct), medianRun(client)
			dcpu, ccpu := cpuPerRow(d)*1e6, cpuPerRow(c)*1e6
			fmt.Fprintf(w, "read stage CPU s per M rows at %s rows: direct reader %.3f, client RowIterator %.3f (%.1fx) (target <= %.2f for the direct reader: %s)\n",
				human(n), dcpu, ccpu, ccpu/dcpu, targetReadCPU, verdict(dcpu <= targetReadCPU))
		}
		var reads []string
		for _, s := range []string{ScenarioReadStorage, ScenarioReadREST, ScenarioReadRESTUnpaged} {
			if rs := runs[key(s, n)]; len(rs) > 0 {
				m := medianRun(rs)
				reads = append(reads, fmt.Sprintf("%s %.0f rows/s, %.1f MiB", s, m.RowsPerSecond(), m.PeakRSSMiB()))
			}
		}
		if len(reads) > 1 {
			fmt.Fprintf(w, "read stage at %s rows, rows/s and peak RSS: %s\n", human(n), strings.Join(reads, "; "))
		}
	}
	if len(counts) >= 2 {
		lo, hi := counts[0], counts[len(counts)-1]
		for _, s := range []string{ScenarioJob, ScenarioJobStorage, ScenarioJobDiscard, ScenarioLimit, ScenarioReadStorage, ScenarioReadREST, ScenarioReadRESTUnpaged} {
			a, b := runs[key(s, lo)], runs[key(s, hi)]
			if len(a) == 0 || len(b) == 0 {
				continue
			}
			ma, mb := median(peakRSS(a)), median(peakRSS(b))
			growth := mb/ma - 1
			line := fmt.Sprintf("%s peak RSS at %s vs %s rows: %.1f vs %.1f MiB (%+.1f%%), medians of %d and %d runs (ranges %s and %s MiB)",
				s, human(hi), human(lo), mb, ma, 100*growth, len(b), len(a), rssRange(b), rssRange(a))
			if s == ScenarioJob || s == ScenarioJobStorage || s == ScenarioReadREST {
				line += fmt.Sprintf(" (target within %.0f%% and under %d MiB: %s)", 100*targetRSSGrowth, targetRSSMiB,
					verdict(growth <= targetRSSGrowth && slices.Max(peakRSS(b)) < targetRSSMiB))
			}
			fmt.Fprintln(w, line)
		}
	}
	for _, n := range counts {
		if rs := runs[key(ScenarioVerifyFull, n)]; len(rs) > 0 {
			peak := slices.Max(peakRSS(rs))
			fmt.Fprintf(w, "verify-full peak RSS at %s rows: %.1f MiB (ksqldb.verify=full is refused above %s rows; the Job's memory limit is %d MiB: %s)\n",
				human(n), peak, human(maxFullVerifyRows), jobMemoryLimitMiB, verdict(n > maxFullVerifyRows || peak < jobMemoryLimitMiB))
		}
	}
	if seed, ok := byKey[key(ScenarioSeed, seedRows(results))]; ok && seed.RowsPerSecond() > 0 {
		for _, n := range counts {
			if job, ok := byKey[key(ScenarioJob, n)]; ok {
				ratio := job.RowsPerSecond() / seed.RowsPerSecond()
				fmt.Fprintf(w, "job at %s rows / seed-like: %.0fx (target >= %dx: %s; seed-like measured over %d rows and extrapolated)\n",
					human(n), ratio, targetOverSeed, verdict(ratio >= targetOverSeed), seed.Rows)
			}
		}
	}
	fmt.Fprintln(w)
	for _, s := range Scenarios {
		fmt.Fprintf(w, "  %-17s %s\n", s, descriptions[s])
	}
	fmt.Fprintln(w, "  CPU s is user+system time of the scenario's child process (the job or produce loop and librdkafka) over the timed")
	fmt.Fprintln(w, "  section, the broker not included; broker CPU s is the bench parent's (kfake's, and the BigQuery doubles' for the")
	fmt.Fprintln(w, "  BigQuery scenarios) user+system time over the child's run;")
	fmt.Fprintln(w, "  peak RSS is the child's VmHWM: the job's own memory, what a container limit sees, the broker's not included; Go heap")
	fmt.Fprintln(w, "  is the peak of the child's Go heap objects (sampled every 5 ms): the rest of RSS is mostly librdkafka's C memory and the runtime.")
}

func cpuPerRow(r Result) float64 { return r.CPUSeconds() / float64(r.Rows) }

func peakRSS(rs []Result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.PeakRSSMiB()
	}
	return out
}

func rssRange(rs []Result) string {
	v := peakRSS(rs)
	return fmt.Sprintf("%.1f–%.1f", slices.Min(v), slices.Max(v))
}

func producerSummary(t Tuning) string {
	c := producerConfig(nil, t)
	header := "every record of every scenario carries the run header (kafka.run_header=true)"
	if !t.apply().Kafka.RunHeader {
		header = "no run header (kafka.run_header=false)"
	}
	return fmt.Sprintf("compression=%s linger=%s batch.size=%d queue.buffering.max.messages=%d queue.buffering.max.kbytes=%d, idempotent, acks=all, murmur2_random; %s",
		c.Compression, c.Linger, c.BatchBytes, c.QueueMaxMessages, c.QueueMaxKBytes, header)
}

func key(s string, n int64) string { return fmt.Sprintf("%s/%d", s, n) }

func containsRows(s []int64, n int64) bool {
	for _, x := range s {
		if x == n {
			return true
		}
	}
	return false
}

func seedRows(results []Result) int64 {
	for _, r := range results {
		if r.Scenario == ScenarioSeed {
			return r.Rows
		}
	}
	return 0
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func human(n int64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%d M", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%d k", n/1000)
	}
	return fmt.Sprint(n)
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	}
	return strings.TrimSuffix(d.Round(time.Second).String(), "0m")
}

// median returns the median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianRun returns the run whose rows/s is the median (the lower middle
// for an even count), so that its RSS and CPU figures belong to one run.
func medianRun(rs []Result) Result {
	s := append([]Result(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].RowsPerSecond() < s[j].RowsPerSecond() })
	return s[(len(s)-1)/2]
}

func fmtRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
