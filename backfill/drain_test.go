package backfill_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

// stuckProducer takes records but never gets them acknowledged, as with a
// broker that stopped answering: Flush returns only when its context ends.
type stuckProducer struct{ produced atomic.Int64 }

func (p *stuckProducer) Produce(context.Context, []byte, []byte) error { p.produced.Add(1); return nil }
func (p *stuckProducer) Flush(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}
func (p *stuckProducer) Deliveries() backfill.Deliveries {
	return backfill.Deliveries{Produced: p.produced.Load()}
}

// TestSIGTERMDuringTheFinalFlushWaitsOnlyTheDrainTimeout: every row is
// read and the pipeline waits for acknowledgements (up to FlushTimeout)
// when SIGTERM arrives; the wait is cut to DrainTimeout, so that the
// report is written before Kubernetes' grace period ends.
func TestSIGTERMDuringTheFinalFlushWaitsOnlyTheDrainTimeout(t *testing.T) {
	t.Parallel()
	// In a synctest bubble the clock moves only once every goroutine of the
	// run is blocked, so the timings below are the pipeline's own, exactly,
	// and the 20s flush a broken drain would wait costs no real time.
	synctest.Test(t, func(t *testing.T) {
		p := pipeline(t, &backfilltest.Source{Rows: 50}, &stuckProducer{})
		p.FlushTimeout, p.DrainTimeout = 20*time.Second, 200*time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel) // the rows are read by then: the signal lands in the flush
		start := time.Now()
		rep := &backfill.Report{}
		err := p.Run(ctx, rep)
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("Run returned %s after start; a signal during the flush must cut the wait to the 200ms drain timeout", el)
		}
		if backfill.KindOf(err) != backfill.KindInterrupted || rep.RowsRead != 50 || rep.RecordsProduced != 50 || rep.RecordsAcked != 0 {
			t.Fatalf("kind %v: %v (report %+v)", backfill.KindOf(err), err, rep)
		}
	})
}

// TestPanicInAPipelineGoroutineIsAnInternalError: a panic while reading,
// encoding or sending ends the run with a KindInternal error (exit 1)
// instead of crashing the process with Go's exit 2.
func TestPanicInAPipelineGoroutineIsAnInternalError(t *testing.T) {
	t.Parallel()
	panicky := func(i int64, dst []any) []any {
		if i == 20 {
			panic("bad row")
		}
		return backfilltest.DefaultRow(i, dst)
	}
	rep := &backfill.Report{}
	err := pipeline(t, &backfilltest.Source{Rows: 100, Row: panicky}, &backfilltest.Producer{}).Run(context.Background(), rep)
	if backfill.KindOf(err) != backfill.KindInternal || !strings.Contains(err.Error(), "panic: bad row") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
}

// panicFilter panics in the encoding goroutines.
type panicFilter struct{}

func (panicFilter) Keep(context.Context, []backfill.KeyValue, []bool) error { panic("bad filter") }

func TestPanicWhileEncodingIsAnInternalError(t *testing.T) {
	t.Parallel()
	p := pipeline(t, &backfilltest.Source{Rows: 100}, &backfilltest.Producer{})
	p.Filter = panicFilter{}
	err := p.Run(context.Background(), &backfill.Report{})
	if backfill.KindOf(err) != backfill.KindInternal || !strings.Contains(err.Error(), "panic: bad filter") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
}
