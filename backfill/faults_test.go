package backfill_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

// inFlightProducer counts records as produced at once but acknowledges
// them only when Flush runs, as a real producer whose records are still
// in flight when the run stops. With hold set it never acknowledges.
type inFlightProducer struct {
	mu       sync.Mutex
	d        backfill.Deliveries
	keys     []int64
	hold     bool
	flushes  int
	failFrom int64 // if > 0, records from this one on fail delivery at Flush
}

func (p *inFlightProducer) Produce(ctx context.Context, key, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.d.Produced++
	p.keys = append(p.keys, zigzag(key[5:]))
	return nil
}

func (p *inFlightProducer) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.flushes++
	if !p.hold {
		for i := p.d.Acked + p.d.Failed; i < p.d.Produced; i++ {
			if p.failFrom > 0 && i >= p.failFrom {
				p.d.Failed++
				if len(p.d.Errors) < 5 {
					p.d.Errors = append(p.d.Errors, "Local: Message timed out")
				}
			} else {
				p.d.Acked++
			}
		}
	}
	undelivered := p.d.Undelivered()
	p.mu.Unlock()
	if undelivered == 0 {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func (p *inFlightProducer) Deliveries() backfill.Deliveries {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.d
	d.Errors = append([]string(nil), d.Errors...)
	return d
}

// consistent checks the report's delivery accounting against the producer.
func consistent(t *testing.T, rep *backfill.Report, d backfill.Deliveries) {
	t.Helper()
	if rep.RecordsProduced != d.Produced || rep.RecordsAcked != d.Acked || rep.RecordsFailed != d.Failed ||
		rep.RecordsUndelivered != d.Produced-d.Acked-d.Failed || rep.RecordsUndelivered < 0 {
		t.Fatalf("report %+v does not match the producer's deliveries %+v", rep, d)
	}
	if rep.RecordsProduced != rep.RecordsEncoded {
		t.Fatalf("report: %d records encoded but %d produced", rep.RecordsEncoded, rep.RecordsProduced)
	}
	skipped := rep.RowsSkipped["null_key"] + rep.RowsSkipped["null_value"]
	if rep.RecordsEncoded+skipped > rep.RowsRead {
		t.Fatalf("report: %d encoded + %d skipped > %d rows read", rep.RecordsEncoded, skipped, rep.RowsRead)
	}
}

// TestSourceErrorMidStreamFlushesAndReportsRowsSoFar: BigQuery fails
// after 500 rows. The run stops reading, still waits for the records in
// flight (they end acknowledged, not lost), fails with the source kind and
// reports the rows read so far.
func TestSourceErrorMidStreamFlushesAndReportsRowsSoFar(t *testing.T) {
	t.Parallel()
	boom := errors.New("rpc error: code = Unavailable desc = stream reset")
	prod := &inFlightProducer{}
	p := pipeline(t, &backfilltest.Source{Rows: 1000, FailAt: 500, FailErr: boom}, prod)
	var rep backfill.Report
	err := p.Run(context.Background(), &rep)
	rep.Finish(err, time.Now())
	if backfill.KindOf(err) != backfill.KindSource || !errors.Is(err, boom) || !strings.Contains(err.Error(), "reading source row 501") {
		t.Fatalf("got %v (kind %s); want a source error naming row 501", err, backfill.KindOf(err))
	}
	if rep.ExitCode != backfill.ExitSource || rep.Status != "failed" || rep.ErrorKind != "source" {
		t.Fatalf("report status %q exit %d kind %q", rep.Status, rep.ExitCode, rep.ErrorKind)
	}
	if prod.flushes == 0 || rep.RecordsAcked != rep.RecordsProduced || rep.RecordsUndelivered != 0 {
		t.Fatalf("records in flight were not flushed: %d flushes, report %+v", prod.flushes, rep)
	}
	if rep.RowsRead != 500 || rep.RecordsProduced == 0 || rep.RecordsProduced > 500 {
		t.Fatalf("report rows_read %d, produced %d; want the 500 rows read so far", rep.RowsRead, rep.RecordsProduced)
	}
	consistent(t, &rep, prod.Deliveries())
	t.Logf("rows read %d, records produced %d and acknowledged %d", rep.RowsRead, rep.RecordsProduced, rep.RecordsAcked)
	// Every produced key is one of the rows read, once.
	seen := map[int64]bool{}
	for _, k := range prod.keys {
		if k < 1 || k > 500 || seen[k] {
			t.Fatalf("key %d produced (twice or beyond the rows read)", k)
		}
		seen[k] = true
	}
	// The message tells the operator what was delivered.
	for _, part := range []string{"records produced", "acknowledged", "undelivered"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q lacks %q", err, part)
		}
	}
}

// TestSourceErrorAtOpenWritesNothing: the query itself fails.
func TestSourceErrorAtOpenWritesNothing(t *testing.T) {
	t.Parallel()
	prod := &inFlightProducer{}
	p := pipeline(t, &backfilltest.Source{OpenErr: errors.New("googleapi: Error 500: backendError")}, prod)
	var rep backfill.Report
	err := p.Run(context.Background(), &rep)
	if backfill.KindOf(err) != backfill.KindSource || rep.RowsRead != 0 || prod.d.Produced != 0 {
		t.Fatalf("got %v (kind %s), report %+v", err, backfill.KindOf(err), rep)
	}
}

// TestInterruptFlushesRecordsInFlight: SIGTERM while records are in
// flight; the drain acknowledges them and the report says interrupted with
// nothing undelivered.
func TestInterruptFlushesRecordsInFlight(t *testing.T) {
	t.Parallel()
	// The poll below advances the bubble's clock only once the run is blocked
	// on the source, so SIGTERM lands after the 400 rows, without real waits.
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		prod := &inFlightProducer{}
		p := pipeline(t, &backfilltest.Source{Rows: 1000, Block: block, BlockAfter: 400}, prod)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		var rep backfill.Report
		go func() { done <- p.Run(ctx, &rep) }()
		for prod.Deliveries().Produced < 395 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		err := <-done
		rep.Finish(err, time.Now())
		if backfill.KindOf(err) != backfill.KindInterrupted || rep.Status != "interrupted" || rep.ExitCode != backfill.ExitInterrupted {
			t.Fatalf("got %v; report status %q exit %d", err, rep.Status, rep.ExitCode)
		}
		if rep.RecordsAcked != rep.RecordsProduced || rep.RecordsUndelivered != 0 || rep.RowsRead != 400 {
			t.Fatalf("report %+v: want the 400 rows read acknowledged by the drain", rep)
		}
		consistent(t, &rep, prod.Deliveries())
		if !strings.Contains(err.Error(), "0 undelivered") || !strings.Contains(err.Error(), "rerun") {
			t.Errorf("message %q", err)
		}
	})
}

// TestInterruptWithUnacknowledgedRecordsReportsThem: the broker does not
// answer during the drain; the run still ends within the drain timeout and
// the report counts the records as undelivered instead of acknowledged.
func TestInterruptWithUnacknowledgedRecordsReportsThem(t *testing.T) {
	t.Parallel()
	// In the bubble the drain's 200ms and the guard's 30s are fake time: a
	// drain that waited the hour-long flush instead fails at once, not after 30s.
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		prod := &inFlightProducer{hold: true}
		p := pipeline(t, &backfilltest.Source{Rows: 1000, Block: block, BlockAfter: 200}, prod)
		p.FlushTimeout, p.DrainTimeout = time.Hour, 200*time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		var rep backfill.Report
		go func() { done <- p.Run(ctx, &rep) }()
		for prod.Deliveries().Produced < 195 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			rep.Finish(err, time.Now())
			if backfill.KindOf(err) != backfill.KindInterrupted || rep.ExitCode != backfill.ExitInterrupted {
				t.Fatalf("got %v", err)
			}
		case <-time.After(30 * time.Second):
			<-done // a run left waiting would deadlock the bubble; its hour-long flush ends at once in fake time
			t.Fatal("the drain did not end at its timeout")
		}
		if rep.RecordsAcked != 0 || rep.RecordsUndelivered != rep.RecordsProduced || rep.RecordsProduced == 0 {
			t.Fatalf("report %+v: want every produced record undelivered", rep)
		}
		consistent(t, &rep, prod.Deliveries())
	})
}

// TestDeliveryFailuresAtFlushFailTheRun: the last records time out in the
// producer; the report shows acknowledged versus failed, and the run fails
// with the produce kind although every row was read.
func TestDeliveryFailuresAtFlushFailTheRun(t *testing.T) {
	t.Parallel()
	prod := &inFlightProducer{failFrom: 300}
	p := pipeline(t, &backfilltest.Source{Rows: 400}, prod)
	var rep backfill.Report
	err := p.Run(context.Background(), &rep)
	rep.Finish(err, time.Now())
	if backfill.KindOf(err) != backfill.KindProduce || rep.ExitCode != backfill.ExitProduce {
		t.Fatalf("got %v", err)
	}
	if rep.RecordsAcked != 300 || rep.RecordsFailed != 100 || len(rep.DeliveryErrors) == 0 || rep.RowsRead != 400 {
		t.Fatalf("report %+v", rep)
	}
	if !strings.Contains(err.Error(), "100 of 400 records failed delivery") || !strings.Contains(err.Error(), "Message timed out") {
		t.Errorf("message %q", err)
	}
	consistent(t, &rep, prod.Deliveries())
}

// TestExtremeAndDuplicateIDsAreEncodedExactly: negative, zero and the
// int64 extremes pass through unchanged, and a key repeated in the source
// is produced every time it appears (the table keeps the MIN).
func TestExtremeAndDuplicateIDsAreEncodedExactly(t *testing.T) {
	t.Parallel()
	rows := [][2]int64{{-5, math.MaxInt64}, {math.MaxInt64, -1}, {math.MinInt64, math.MinInt64}, {0, 0}, {7, 3}, {7, 1}, {7, 2}}
	src := &backfilltest.Source{Rows: int64(len(rows)), Row: func(i int64, dst []any) []any {
		return append(dst[:0], rows[i][0], rows[i][1])
	}}
	prod := &backfilltest.Producer{Keep: true}
	obs := &collector{seen: map[int64]int64{}}
	p := pipeline(t, src, prod)
	p.Observer = obs
	var rep backfill.Report
	if err := p.Run(context.Background(), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[[2]int64]int{}
	for _, r := range prod.Records() {
		got[[2]int64{zigzag(r.Key[5:]), zigzag(r.Value[6:])}]++
	}
	for _, row := range rows {
		if got[row] != 1 {
			t.Fatalf("row %v produced %d times; all produced: %v", row, got[row], got)
		}
	}
	if rep.RecordsAcked != int64(len(rows)) {
		t.Fatalf("report %+v", rep)
	}
}

// TestSourceErrorMidStreamProducesEveryRowRead: the rows read before the
// source failed are all accounted for: produced, or skipped and counted.
func TestSourceErrorMidStreamProducesEveryRowRead(t *testing.T) {
	t.Parallel()
	prod := &inFlightProducer{}
	p := pipeline(t, &backfilltest.Source{Rows: 1000, FailAt: 500, FailErr: errors.New("stream reset")}, prod)
	var rep backfill.Report
	err := p.Run(context.Background(), &rep)
	if backfill.KindOf(err) != backfill.KindSource {
		t.Fatalf("got %v", err)
	}
	skipped := rep.RowsSkipped["null_key"] + rep.RowsSkipped["null_value"]
	if rep.RowsRead != rep.RecordsEncoded+skipped || rep.RecordsAcked != rep.RowsRead {
		t.Fatalf("%d rows read, %d encoded, %d skipped, %d acknowledged: rows read before the failure were dropped", rep.RowsRead, rep.RecordsEncoded, skipped, rep.RecordsAcked)
	}
}
