package cli

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
	"github.com/ordermin/ordermin-backfill/backfill/bigquery"
	"github.com/ordermin/ordermin-backfill/backfill/kafka"
	"github.com/ordermin/ordermin-backfill/backfill/ksqldb"
	"github.com/ordermin/ordermin-backfill/backfill/schemaregistry"
	"github.com/ordermin/ordermin-backfill/config"
)

// world is the outside systems of one run, in memory. It records the
// calls the run makes, in order, and fails the ones named in fail.
type world struct {
	rows         int64                   // rows the source holds: user i+1, order 1000*(i+1)
	reportedRows int64                   // if > 0, the size the source reports instead
	before       []backfill.Watermarks   // the topic's offsets before the run
	fail         map[string]error        // call -> its error
	failDelivery string                  // every delivery fails with this
	progress     func(backfill.Progress) // the job's progress sink

	mu       sync.Mutex
	calls    []string
	targets  map[string]map[int32]int64 // catch-up stage -> target offsets
	markers  map[string]bool            // catch-up stage -> the barrier can ask the topic for transaction markers
	want     ksqldb.Expectation         // what the preflight was asked
	gaps     map[int32][][2]int64       // what ReadBack was asked to read
	verified *ksqldb.Recorder           // what Verify was given
	topic    *stubTopic                 // the producer, once opened
	delta    *stubDelta                 // the delta filter, once made
}

const testPartitions = 2

// errFail is the error of a call named in world.fail with a nil value.
var errFail = backfill.Errorf(backfill.KindUnavailable, "stub failure")

// call records name and returns the error the world has for it.
func (w *world) call(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, name)
	if err, ok := w.fail[name]; ok {
		if err == nil {
			return errFail
		}
		return err
	}
	return nil
}

func (w *world) called() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

// run runs the job with c over the world.
func (w *world) run(t *testing.T, c config.Config, check bool) (*backfill.Report, error) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("the case's settings are invalid: %v", err)
	}
	if w.before == nil {
		w.before = []backfill.Watermarks{{Partition: 0}, {Partition: 1}}
	}
	rep := &backfill.Report{}
	j := &job{cfg: c, log: slog.New(slog.DiscardHandler), rep: rep, check: check, open: w.adapters(), progress: w.progress}
	return rep, j.run(t.Context())
}

func (w *world) adapters() adapters {
	return adapters{
		registry: func(schemaregistry.Config) (registryClient, error) {
			if err := w.call("registry.New"); err != nil {
				return nil, err
			}
			return stubRegistry{w}, nil
		},
		producer: func(kafka.Config, *slog.Logger) (topicProducer, error) {
			if err := w.call("kafka.New"); err != nil {
				return nil, err
			}
			w.topic = &stubTopic{Producer: &backfilltest.Producer{FailDeliveries: w.failDelivery}, w: w}
			return w.topic, nil
		},
		ksql: func(ksqldb.Config) (ksqlClient, error) {
			if err := w.call("ksqldb.New"); err != nil {
				return nil, err
			}
			return stubKsql{w}, nil
		},
		source: func(bigquery.Config, *slog.Logger) backfill.Source {
			_ = w.call("bigquery.New")
			return stubSource{w, &backfilltest.Source{Rows: w.rows, ReportedRows: w.reportedRows}}
		},
	}
}

// testValueSchema is ksqlDB's value schema of the stream: one ORDER_ID.
var testValueSchema = backfilltest.KsqlValueSchemaV2

type stubRegistry struct{ w *world }

func (r stubRegistry) Fetch(_ context.Context, topic string) (backfill.Schemas, error) {
	return backfill.Schemas{
		Key:   backfill.RegisteredSchema{Subject: topic + "-key", Version: 1, ID: 1, Schema: `"long"`},
		Value: backfill.RegisteredSchema{Subject: topic + "-value", Version: 1, ID: 2, Schema: testValueSchema},
	}, r.w.call("registry.Fetch")
}

// stubTopic acknowledges records as backfilltest.Producer does, spreading
// them over the partitions from the end offsets before the run.
type stubTopic struct {
	*backfilltest.Producer
	w       *world
	mu      sync.Mutex
	n       int64
	written backfill.Written
	closed  atomic.Int32
}

func (p *stubTopic) Produce(ctx context.Context, key, value []byte) error {
	if err := p.Producer.Produce(ctx, key, value); err != nil || p.FailDeliveries != "" {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	part := int32(p.n % testPartitions)
	p.written.Add(part, p.w.before[part].End+p.n/testPartitions)
	p.n++
	return nil
}

func (p *stubTopic) Flush(ctx context.Context) error {
	if err := p.w.call("kafka.Flush"); err != nil {
		return err
	}
	return p.Producer.Flush(ctx)
}

func (p *stubTopic) Partitions(context.Context) (int, error) {
	return testPartitions, p.w.call("kafka.Partitions")
}

func (p *stubTopic) EndOffsets(_ context.Context, partitions int) ([]backfill.Watermarks, error) {
	if partitions != testPartitions {
		return nil, errors.New("EndOffsets asked for the wrong partition count")
	}
	return p.w.before, p.w.call("kafka.EndOffsets")
}

func (p *stubTopic) Written() *backfill.Written { return &p.written }

func (p *stubTopic) ReadBack(_ context.Context, gaps map[int32][][2]int64, _ string, _ kafka.ReadBackLimits) (backfill.Duplicates, error) {
	p.w.mu.Lock()
	p.w.gaps = gaps
	p.w.mu.Unlock()
	return backfill.Duplicates{Status: "checked"}, p.w.call("kafka.ReadBack")
}

func (p *stubTopic) OnlyMarkers(context.Context, int32, int64, int64) (bool, error) {
	return false, nil
}

func (p *stubTopic) Close() {
	p.closed.Add(1)
	_ = p.w.call("kafka.Close")
}

type stubKsql struct{ w *world }

// testFacts are what the stub's preflight finds.
var testFacts = ksqldb.Facts{Stream: "STREAM_ORDER_INSERT", Table: "TABLE_MIN_ORDER", TableKeyColumn: "ACCOUNT_ID", TableValueColumn: "MIN_ORDER_ID"}

func (k stubKsql) Preflight(_ context.Context, want ksqldb.Expectation) (ksqldb.Facts, error) {
	k.w.mu.Lock()
	k.w.want = want
	k.w.mu.Unlock()
	return testFacts, k.w.call("ksqldb.Preflight")
}

func (k stubKsql) CatchUp(_ context.Context, facts ksqldb.Facts, target map[int32]int64, opts ksqldb.CatchUpOptions) (backfill.CatchUp, error) {
	k.w.mu.Lock()
	if k.w.targets == nil {
		k.w.targets = map[string]map[int32]int64{}
	}
	k.w.targets[opts.Stage] = target
	if k.w.markers == nil {
		k.w.markers = map[string]bool{}
	}
	k.w.markers[opts.Stage] = opts.OnlyMarkers != nil
	k.w.mu.Unlock()
	err := k.w.call("ksqldb.CatchUp(" + opts.Stage + ")")
	cu := backfill.CatchUp{Stage: opts.Stage, Table: facts.Table, Status: "caught_up"}
	if err != nil {
		cu.Status = "stalled"
	}
	return cu, err
}

func (k stubKsql) NewDelta(facts ksqldb.Facts, _ int) deltaFilter {
	_ = k.w.call("ksqldb.NewDelta")
	k.w.delta = &stubDelta{}
	return k.w.delta
}

func (k stubKsql) Verify(_ context.Context, facts ksqldb.Facts, rec *ksqldb.Recorder, _ ksqldb.VerifyOptions) (backfill.Verification, error) {
	k.w.mu.Lock()
	k.w.verified = rec
	k.w.mu.Unlock()
	err := k.w.call("ksqldb.Verify")
	v := backfill.Verification{Mode: string(rec.Mode()), Table: facts.Table, Observed: rec.Observed(), Checked: int64(len(rec.Keys())), Status: "passed"}
	if err != nil {
		v.Status = "failed"
	}
	return v, err
}

// stubDelta finds the even keys in the table as sent, the odd ones missing.
type stubDelta struct{ missing, present atomic.Int64 }

func (d *stubDelta) Keep(_ context.Context, records []backfill.KeyValue, keep []bool) error {
	for i, r := range records {
		keep[i] = r.Key%2 == 1
		if keep[i] {
			d.missing.Add(1)
		} else {
			d.present.Add(1)
		}
	}
	return nil
}

func (d *stubDelta) Counts() backfill.Delta {
	return backfill.Delta{Missing: d.missing.Load(), AlreadyPresent: d.present.Load()}
}

type stubSource struct {
	w *world
	*backfilltest.Source
}

// stubBytes is what the stub source's dry run says its query processes.
const stubBytes = 10 << 20

// Check is a dry run that binds the rows' columns through plan.
func (s stubSource) Check(_ context.Context, plan func([]backfill.Column) (backfill.Projection, error)) (*backfill.SourceCheck, error) {
	if err := s.w.call("source.Check"); err != nil {
		return nil, err
	}
	cols := []backfill.Column{{Name: "user_id", Type: backfill.TypeInt64}, {Name: "min_order_id", Type: backfill.TypeInt64}}
	if _, err := plan(cols); err != nil {
		return nil, err
	}
	return &backfill.SourceCheck{Columns: []string{"user_id INT64", "min_order_id INT64"}, BytesProcessed: stubBytes}, nil
}

func (s stubSource) Open(ctx context.Context) (backfill.RowReader, error) {
	if err := s.w.call("source.Open"); err != nil {
		return nil, err
	}
	return s.Source.Open(ctx)
}
