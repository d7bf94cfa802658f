package backfill_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

var valueSchema = backfilltest.KsqlValueSchema

func codec(t testing.TB) *backfill.Codec {
	t.Helper()
	c, err := backfill.NewCodec(backfill.Schemas{
		Key:   backfill.RegisteredSchema{Subject: "STREAM.ORDER.INSERT-key", Version: 1, ID: 1, Schema: `"long"`},
		Value: backfill.RegisteredSchema{Subject: "STREAM.ORDER.INSERT-value", Version: 1, ID: 2, Schema: valueSchema},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPipelineProducesEveryRowOnceAndCountsSkips(t *testing.T) {
	t.Parallel()
	const n = 1000
	src := &backfilltest.Source{Rows: n, Row: func(i int64, dst []any) []any {
		switch i % 100 {
		case 10:
			return append(dst[:0], nil, i) // NULL user
		case 20:
			return append(dst[:0], i, nil) // NULL order
		}
		return backfilltest.DefaultRow(i, dst)
	}}
	prod := &backfilltest.Producer{Keep: true}
	obs := &collector{seen: map[int64]int64{}}
	p := pipeline(t, src, prod)
	p.Observer = obs
	var rep backfill.Report
	if err := p.Run(context.Background(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.RowsRead != n || rep.RowsSkipped["null_key"] != 10 || rep.RowsSkipped["null_value"] != 10 ||
		rep.RecordsEncoded != n-20 || rep.RecordsProduced != n-20 || rep.RecordsAcked != n-20 {
		t.Fatalf("report = %+v", rep)
	}
	keys := map[int64]bool{}
	for _, r := range prod.Records() {
		k, v := zigzag(r.Key[5:]), zigzag(r.Value[6:])
		if keys[k] {
			t.Fatalf("key %d produced twice", k)
		}
		keys[k] = true
		if v != 1000*k || obs.seen[k] != v {
			t.Fatalf("key %d: produced value %d, observed %d", k, v, obs.seen[k])
		}
	}
	if len(keys) != n-20 || len(obs.seen) != n-20 {
		t.Fatalf("%d keys produced, %d observed; want %d", len(keys), len(obs.seen), n-20)
	}
}

func TestPipelineDryRunProducesNothing(t *testing.T) {
	t.Parallel()
	var rep backfill.Report
	p := pipeline(t, &backfilltest.Source{Rows: 50}, nil)
	if err := p.Run(context.Background(), &rep); err != nil {
		t.Fatal(err)
	}
	// Keys 1..50 take 6 bytes; values 1000k take 8 bytes for k <= 8 and 9 above.
	if !rep.DryRun || rep.RecordsEncoded != 50 || rep.RecordsProduced != 0 || rep.Bytes != 742 {
		t.Fatalf("report = %+v", rep)
	}
}

func TestPipelineFailures(t *testing.T) {
	t.Parallel()
	// "never acknowledged" waits out the 50ms flush timeout: fake time in the bubble.
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("connection reset")
		for name, tc := range map[string]struct {
			src      *backfilltest.Source
			prod     *backfilltest.Producer
			empty    bool
			wantKind backfill.Kind
		}{
			"source fails mid-stream": {&backfilltest.Source{Rows: 100, FailAt: 50, FailErr: boom}, &backfilltest.Producer{}, false, backfill.KindSource},
			"source cannot open":      {&backfilltest.Source{OpenErr: boom}, &backfilltest.Producer{}, false, backfill.KindSource},
			"deliveries fail":         {&backfilltest.Source{Rows: 100}, &backfilltest.Producer{FailDeliveries: "broker down"}, false, backfill.KindProduce},
			"never acknowledged":      {&backfilltest.Source{Rows: 10}, &backfilltest.Producer{Hold: true}, false, backfill.KindProduce},
			"empty result":            {&backfilltest.Source{Rows: 0}, &backfilltest.Producer{}, false, backfill.KindContract},
			"mistyped column":         {&backfilltest.Source{Rows: 10, Cols: []backfill.Column{{Name: "user_id", Type: backfill.TypeString}, {Name: "order_id", Type: backfill.TypeInt64}}}, &backfilltest.Producer{}, false, backfill.KindContract},
			"mistyped value":          {&backfilltest.Source{Rows: 10, Row: func(i int64, dst []any) []any { return append(dst[:0], "x", i) }}, &backfilltest.Producer{}, false, backfill.KindContract},
		} {
			p := pipeline(t, tc.src, tc.prod)
			p.FlushTimeout = 50 * time.Millisecond
			var rep backfill.Report
			err := p.Run(context.Background(), &rep)
			if backfill.KindOf(err) != tc.wantKind {
				t.Errorf("%s: got %v (kind %s), want kind %s", name, err, backfill.KindOf(err), tc.wantKind)
			}
			if rep.RecordsProduced != rep.RecordsAcked+rep.RecordsFailed+(rep.RecordsProduced-rep.RecordsAcked-rep.RecordsFailed) {
				t.Errorf("%s: inconsistent accounting %+v", name, rep)
			}
		}
		var rep backfill.Report
		p := pipeline(t, &backfilltest.Source{Rows: 0}, &backfilltest.Producer{})
		p.AllowEmpty = true
		if err := p.Run(context.Background(), &rep); err != nil || rep.RowsRead != 0 {
			t.Fatalf("allowed empty result: %v", err)
		}
	})
}

func TestPipelineInterruptedStopsReadingAndReports(t *testing.T) {
	t.Parallel()
	// The poll advances the bubble's clock only once the run is blocked on the
	// source, so the signal lands after the 300 rows, without real waits.
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		src := &backfilltest.Source{Rows: 1000, Block: block, BlockAfter: 300}
		prod := &backfilltest.Producer{}
		ctx, cancel := context.WithCancel(context.Background())
		p := pipeline(t, src, prod)
		done := make(chan error)
		var rep backfill.Report
		go func() { done <- p.Run(ctx, &rep) }()
		for prod.Deliveries().Produced < 290 {
			time.Sleep(time.Millisecond)
		}
		cancel() // SIGTERM
		err := <-done
		if backfill.KindOf(err) != backfill.KindInterrupted {
			t.Fatalf("got %v, want interrupted", err)
		}
		if rep.RowsRead != 300 || rep.RecordsAcked != rep.RecordsProduced || rep.RecordsProduced > 300 {
			t.Fatalf("report = %+v", rep)
		}
	})
}

// evenPresent is a Filter that says the table already holds every even key.
type evenPresent struct{}

func (evenPresent) Keep(_ context.Context, kvs []backfill.KeyValue, keep []bool) error {
	for i, kv := range kvs {
		keep[i] = kv.Key%2 == 1
	}
	return nil
}

func TestPipelineFilterSkipsWhatTheTableHolds(t *testing.T) {
	t.Parallel()
	src := &backfilltest.Source{Rows: 100, Row: func(i int64, dst []any) []any {
		if i == 0 {
			return append(dst[:0], nil, int64(5)) // NULL user: left to the encoder
		}
		return backfilltest.DefaultRow(i, dst)
	}}
	prod := &backfilltest.Producer{Keep: true}
	obs := &collector{seen: map[int64]int64{}}
	p := pipeline(t, src, prod)
	p.Filter, p.Observer = evenPresent{}, obs
	var rep backfill.Report
	if err := p.Run(context.Background(), &rep); err != nil {
		t.Fatal(err)
	}
	// Users 2..100 are read (user 1 is row 0, NULL); 50 odd users 3..99 remain.
	if rep.RowsSkipped["in_table"] != 50 || rep.RowsSkipped["null_key"] != 1 || rep.RecordsAcked != 49 || len(obs.seen) != 49 {
		t.Fatalf("report %+v, observed %d", rep, len(obs.seen))
	}
	for _, r := range prod.Records() {
		if zigzag(r.Key[5:])%2 == 0 {
			t.Fatalf("produced even key %d", zigzag(r.Key[5:]))
		}
	}
}

// serialProducer fails the test if Produce is ever entered by two
// goroutines at once: the pipeline hands over one batch at a time.
type serialProducer struct {
	backfilltest.Producer
	inside  atomic.Int32
	overlap atomic.Bool
}

func (s *serialProducer) Produce(ctx context.Context, key, value []byte) error {
	if s.inside.Add(1) > 1 {
		s.overlap.Store(true)
	}
	defer s.inside.Add(-1)
	runtime.Gosched() // give another caller the chance to overlap
	return s.Producer.Produce(ctx, key, value)
}

func TestPipelineProducesOneBatchAtATimeWhileEncodingInParallel(t *testing.T) {
	t.Parallel()
	const n = 5000
	prod := &serialProducer{}
	p := pipeline(t, &backfilltest.Source{Rows: n}, prod)
	p.Workers = 8
	var rep backfill.Report
	if err := p.Run(context.Background(), &rep); err != nil {
		t.Fatal(err)
	}
	if prod.overlap.Load() {
		t.Fatal("Produce was called from two goroutines at once")
	}
	if rep.RecordsEncoded != n || rep.RecordsAcked != n || rep.Bytes == 0 {
		t.Fatalf("report = %+v", rep)
	}
}

// TestPipelinePassesItsProgressOn: OnProgress's last snapshot holds the
// counters the report gets, so a parent that outlives the job's process
// can report them.
func TestPipelinePassesItsProgressOn(t *testing.T) {
	t.Parallel()
	src := &backfilltest.Source{Rows: 300, Row: func(i int64, dst []any) []any {
		if i%100 == 10 {
			return append(dst[:0], nil, i) // NULL user
		}
		return backfilltest.DefaultRow(i, dst)
	}}
	p := pipeline(t, src, &backfilltest.Producer{})
	var last backfill.Progress
	calls := 0
	p.OnProgress = func(s backfill.Progress) { last, calls = s, calls+1 }
	var rep backfill.Report
	if err := p.Run(context.Background(), &rep); err != nil {
		t.Fatal(err)
	}
	want := backfill.Progress{RowsRead: rep.RowsRead, RowsSkipped: rep.RowsSkipped, RecordsEncoded: rep.RecordsEncoded,
		RecordsProduced: rep.RecordsProduced, RecordsAcked: rep.RecordsAcked, RecordsFailed: rep.RecordsFailed, Bytes: rep.Bytes}
	if calls == 0 || fmt.Sprint(last) != fmt.Sprint(want) || last.RecordsAcked != 297 {
		t.Fatalf("%d calls, last %+v, want %+v", calls, last, want)
	}
}
