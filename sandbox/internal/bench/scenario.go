package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/config"
)

// Scenario names.
const (
	ScenarioLimit      = "limit"       // raw produce of pre-encoded bytes
	ScenarioJob        = "job"         // the job's pipeline, in-memory source, production producer
	ScenarioJobDiscard = "job-discard" // the job's pipeline against a discarding producer (no broker)
	ScenarioVerifyFull = "verify-full" // job-discard keeping every key for ksqldb.verify=full
	ScenarioSeed       = "seed-like"   // one record at a time, waiting for each delivery
	// ScenarioJobStorage is the job reading BigQuery through the Storage
	// Read API double (another process), its pipeline and producer.
	ScenarioJobStorage   = "job-storage"
	ScenarioReadStorage  = "read-storage"  // the direct Storage Read API reader alone
	ScenarioReadIterator = "read-iterator" // the client library's RowIterator over the Storage Read API alone
	// ScenarioReadREST is the job's reader over REST (read_api=rest),
	// pages of bigquery.DefaultRESTPageRows rows, alone.
	ScenarioReadREST = "read-rest"
	// ScenarioReadRESTUnpaged is the same reader asking for no row limit
	// per page: BigQuery's replies as full as its 10 MB allows.
	ScenarioReadRESTUnpaged = "read-rest-unpaged"
)

// Scenarios lists every scenario in table order.
var Scenarios = []string{ScenarioLimit, ScenarioJob, ScenarioJobStorage, ScenarioJobDiscard, ScenarioVerifyFull,
	ScenarioReadStorage, ScenarioReadIterator, ScenarioReadREST, ScenarioReadRESTUnpaged, ScenarioSeed}

// readScenarios read from the BigQuery doubles and drop the rows: no
// broker, once per row count.
var readScenarios = []string{ScenarioReadStorage, ScenarioReadIterator, ScenarioReadREST, ScenarioReadRESTUnpaged}

// usesBigQuery reports whether a scenario reads from the BigQuery doubles.
func usesBigQuery(scenario string) bool {
	return scenario == ScenarioJobStorage || slices.Contains(readScenarios, scenario)
}

// Result is what one scenario measured. Rows/s is Rows/Seconds; CPU is
// user+system seconds of the scenario's process over the timed section
// (the job and librdkafka; also the broker when the process started its
// own); PeakRSSKiB is the process's peak over its whole life.
type Result struct {
	Scenario   string  `json:"scenario"`
	Rows       int64   `json:"rows"`
	Delivered  int64   `json:"delivered"` // records acknowledged (the discarding producer acknowledges at once)
	Seconds    float64 `json:"seconds"`
	UserCPU    float64 `json:"user_cpu_seconds"`
	SysCPU     float64 `json:"sys_cpu_seconds"`
	PeakRSSKiB int64   `json:"peak_rss_kib"`
	RSSSource  string  `json:"rss_source"`
	GoSysKiB   int64   `json:"go_sys_kib"`       // memory the Go runtime obtained from the OS (runtime.MemStats.Sys) at the end
	GoHeapKiB  int64   `json:"go_heap_peak_kib"` // peak of the Go heap's objects, sampled every 5 ms
	Broker     string  `json:"broker"`
	BrokerCPU  float64 `json:"broker_cpu_seconds"` // the bench parent's (the broker's) CPU over the child's run; set by the parent
	Load1      string  `json:"load1"`              // 1-minute load average when the scenario ended
	Tuning     string  `json:"tuning"`
}

// RowsPerSecond is the scenario's throughput.
func (r Result) RowsPerSecond() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Rows) / r.Seconds
}

// CPUSeconds is user plus system time.
func (r Result) CPUSeconds() float64 { return r.UserCPU + r.SysCPU }

// PeakRSSMiB is the peak RSS in MiB.
func (r Result) PeakRSSMiB() float64 { return float64(r.PeakRSSKiB) / 1024 }

// RunOptions say how one scenario runs.
type RunOptions struct {
	Scenario string
	Rows     int64
	Brokers  []string // a running broker whose Topic is empty (the bench parent's); empty: Run starts one in this process
	Broker   string   // mode of the broker Run starts: BrokerRetain, BrokerKeep or BrokerBlackhole
	// BigQuery are the doubles serving the rows of the BigQuery scenarios
	// (the bench parent's); empty: Run starts them in this process.
	BigQuery   BigQueryEndpoints
	CPUProfile string // write a CPU profile of the timed section here
	MemProfile string // write an allocation profile here after the timed section
	Tuning     Tuning // experiment overrides; zero means production defaults
}

// timed is the measured section of a scenario.
type timed func(ctx context.Context) (delivered int64, err error)

// Run runs one scenario in this process and measures it.
func Run(ctx context.Context, o RunOptions) (Result, error) {
	if o.Rows <= 0 {
		return Result{}, fmt.Errorf("rows must be positive, got %d", o.Rows)
	}
	if o.Broker == "" {
		o.Broker = BrokerRetain
	}
	if !slices.Contains(Scenarios, o.Scenario) {
		return Result{}, fmt.Errorf("unknown scenario %q (want one of %v)", o.Scenario, Scenarios)
	}
	res := Result{Scenario: o.Scenario, Rows: o.Rows, Broker: o.Broker, Tuning: o.Tuning.String()}
	codec, err := newCodec()
	if err != nil {
		return res, err
	}
	var run timed
	brokers := o.Brokers
	if usesBigQuery(o.Scenario) && o.BigQuery.REST == "" {
		d, err := startBigQuery(o.Rows)
		if err != nil {
			return res, err
		}
		defer d.close()
		o.BigQuery = d.endpoints()
	}
	switch o.Scenario {
	case ScenarioReadStorage:
		res.Broker = "none"
		run = readStorageRun(o.Rows, o.BigQuery, o.Tuning)
	case ScenarioReadIterator:
		res.Broker = "none"
		run = readIteratorRun(o.Rows, o.BigQuery, o.Tuning)
	case ScenarioReadREST:
		res.Broker = "none"
		run = readRESTRun(o.Rows, o.BigQuery, o.Tuning, o.Tuning.RESTPageRows)
	case ScenarioReadRESTUnpaged:
		res.Broker = "none"
		run = readRESTRun(o.Rows, o.BigQuery, o.Tuning, -1)
	case ScenarioJobDiscard:
		res.Broker = "none"
		run = jobRun(o.Rows, &backfilltest.Source{Rows: o.Rows}, codec, &discardProducer{}, o.Tuning)
	case ScenarioVerifyFull:
		res.Broker = "none"
		run = verifyFullRun(o.Rows, codec, o.Tuning)
	default:
		if len(brokers) == 0 {
			b, err := startBroker(o.Broker)
			if err != nil {
				return res, err
			}
			defer b.close()
			brokers = b.addrs()
		}
		prod, err := kafka.New(producerConfig(brokers, o.Tuning), warnLogger())
		if err != nil {
			return res, err
		}
		defer prod.Close()
		if _, err := prod.Partitions(ctx); err != nil {
			return res, err
		}
		switch o.Scenario {
		case ScenarioLimit:
			r, err := newRing(codec, o.Rows)
			if err != nil {
				return res, err
			}
			run = limitRun(o.Rows, r, prod)
		case ScenarioJob:
			run = jobRun(o.Rows, &backfilltest.Source{Rows: o.Rows}, codec, prod, o.Tuning)
		case ScenarioJobStorage:
			run = jobRun(o.Rows, bigQuerySource(o.BigQuery, o.Tuning), codec, prod, o.Tuning)
		case ScenarioSeed:
			if run, err = seedRun(o.Rows, codec, prod); err != nil {
				return res, err
			}
		}
	}

	runtime.GC()
	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
	}
	heap := startHeapSampler()
	u0, s0 := cpuTime()
	start := time.Now()
	delivered, err := run(ctx)
	elapsed := time.Since(start)
	u1, s1 := cpuTime()
	res.GoHeapKiB = int64(heap.Stop() / 1024)
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	res.Delivered, res.Seconds = delivered, elapsed.Seconds()
	res.UserCPU, res.SysCPU = (u1 - u0).Seconds(), (s1 - s0).Seconds()
	res.PeakRSSKiB, res.RSSSource = peakRSSKiB()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.GoSysKiB = int64(ms.Sys / 1024)
	res.Load1 = loadAverage()
	if err != nil {
		return res, err
	}
	if needsBroker(o.Scenario) {
		// Every acknowledged record must be in the broker's log. Checked
		// after the figures are taken, so the check's client is not in them.
		if end, err := endOffsets(ctx, brokers); err != nil {
			return res, fmt.Errorf("checking the broker's end offsets: %w", err)
		} else if end != delivered {
			return res, fmt.Errorf("the broker appended %d records, the producer counted %d acknowledged", end, delivered)
		}
	}
	if delivered != o.Rows {
		return res, fmt.Errorf("%s: %d of %d rows delivered", o.Scenario, delivered, o.Rows)
	}
	if o.MemProfile != "" {
		f, err := os.Create(o.MemProfile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return res, err
		}
	}
	return res, nil
}

// limitRun produces pre-encoded records from one goroutine through the
// production producer: the most the producer and broker can take.
func limitRun(rows int64, r *ring, prod *kafka.Producer) timed {
	return func(ctx context.Context) (int64, error) {
		for i := range rows {
			k, v := r.at(i)
			if err := prod.Produce(ctx, k, v); err != nil {
				return prod.Deliveries().Acked, err
			}
		}
		if err := prod.Flush(ctx); err != nil {
			return prod.Deliveries().Acked, err
		}
		return delivered(prod.Deliveries())
	}
}

// jobRun runs the job's pipeline over an in-memory source of rows.
// verifyFullRun is the job against a discarding producer with the recorder
// of ksqldb.verify=full observing every record, then handing Verify its
// keys (sorted, duplicates folded): the memory full verification needs.
func verifyFullRun(rows int64, codec *backfill.Codec, t Tuning) timed {
	return func(ctx context.Context) (int64, error) {
		rec, err := ksqldb.NewRecorder(ksqldb.ModeFull, 0, 1)
		if err != nil {
			return 0, err
		}
		p := pipeline(&backfilltest.Source{Rows: rows}, codec, &discardProducer{}, t)
		p.Observer = rec
		p.OnOpen = func(total uint64, known bool) error { // as internal/cli wires it
			if known {
				rec.Reserve(total)
			}
			return nil
		}
		var rep backfill.Report
		if err := p.Run(ctx, &rep); err != nil {
			return rep.RecordsAcked, err
		}
		if keys := rec.Keys(); int64(len(keys)) != rows {
			return rep.RecordsAcked, fmt.Errorf("the recorder kept %d keys of %d rows", len(keys), rows)
		}
		return rep.RecordsAcked, nil
	}
}

func jobRun(rows int64, src backfill.Source, codec *backfill.Codec, prod backfill.Producer, t Tuning) timed {
	return func(ctx context.Context) (int64, error) {
		p := pipeline(src, codec, prod, t)
		var rep backfill.Report
		if err := p.Run(ctx, &rep); err != nil {
			return rep.RecordsAcked, err
		}
		if rep.RowsRead != rows || rep.RecordsEncoded != rows {
			return rep.RecordsAcked, fmt.Errorf("pipeline read %d and encoded %d of %d rows", rep.RowsRead, rep.RecordsEncoded, rows)
		}
		return rep.RecordsAcked, nil
	}
}

// seedRun does what the seed's per-row INSERT … VALUES script did: one
// record at a time, each delivered before the next is sent. It waits for
// the record's delivery report; with the production producer settings
// librdkafka holds each lone record for linger before sending it.
func seedRun(rows int64, codec *backfill.Codec, prod *kafka.Producer) (timed, error) {
	enc, err := codec.Bind(backfill.Mapping{KeyColumn: config.Default().Mapping.KeyColumn}, backfilltest.OrderColumns)
	if err != nil {
		return nil, err
	}
	w := enc.NewWriter()
	return func(ctx context.Context) (int64, error) {
		row := make([]any, 0, 2)
		for i := range rows {
			row = backfilltest.DefaultRow(i, row)
			k, v, _, err := w.Encode(row)
			if err != nil {
				return prod.Deliveries().Acked, err
			}
			if err := prod.Produce(ctx, k, v); err != nil {
				return prod.Deliveries().Acked, err
			}
			for {
				d := prod.Deliveries()
				if d.Failed > 0 {
					return delivered(d)
				}
				if d.Acked == i+1 {
					break
				}
				if err := ctx.Err(); err != nil {
					return d.Acked, err
				}
				time.Sleep(20 * time.Microsecond)
			}
		}
		return delivered(prod.Deliveries())
	}, nil
}

func delivered(d backfill.Deliveries) (int64, error) {
	if d.Failed > 0 {
		return d.Acked, fmt.Errorf("%d records failed delivery: %v", d.Failed, d.Errors)
	}
	return d.Acked, nil
}
