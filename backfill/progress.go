package backfill

import (
	"log/slog"
	"sync"
	"time"
)

// startProgress logs progress until the returned function is called.
func (p *Pipeline) startProgress(log *slog.Logger, c *counters, total uint64, known bool) (stop func()) {
	if p.ProgressEvery <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(p.ProgressEvery)
		defer t.Stop()
		start, last, lastRead := time.Now(), time.Now(), int64(0)
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				read := c.read.Load()
				rate := float64(read-lastRead) / now.Sub(last).Seconds()
				attrs := []any{"rows_read", read, "records_encoded", c.encoded.Load(), "rows_per_second", int64(rate),
					"elapsed", now.Sub(start).Round(time.Second).String()}
				if p.Producer != nil {
					d := p.Producer.Deliveries()
					attrs = append(attrs, "records_produced", d.Produced, "records_acked", d.Acked, "records_failed", d.Failed)
				}
				if known && rate > 0 && uint64(read) <= total {
					eta := time.Duration(float64(total-uint64(read)) / rate * float64(time.Second))
					attrs = append(attrs, "total_rows", total, "eta", eta.Round(time.Second).String())
				}
				log.Info("progress", attrs...)
				last, lastRead = now, read
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// startSnapshots calls OnProgress every ProgressSnapshotEvery until the
// returned function is called.
func (p *Pipeline) startSnapshots(c *counters) (stop func()) {
	if p.OnProgress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(ProgressSnapshotEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.OnProgress(p.snapshot(c))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// snapshot is the run's counters now. They move while it reads them, so
// it reads them downstream first: deliveries, then encoded records, then
// skipped rows, then rows read. Each later read sees at least what the
// earlier ones counted, so the snapshot adds up as a final report does
// (produced <= encoded, encoded + skipped <= read). A batch counts as
// encoded once handed to the producer whole; a record already produced
// from the batch in hand was encoded, hence the max.
func (p *Pipeline) snapshot(c *counters) Progress {
	var s Progress
	if p.Producer != nil {
		d := p.Producer.Deliveries()
		s.RecordsProduced, s.RecordsAcked, s.RecordsFailed = d.Produced, d.Acked, d.Failed
	}
	s.RecordsEncoded, s.Bytes = max(c.encoded.Load(), s.RecordsProduced), c.bytes.Load()
	s.RowsSkipped = map[string]int64{string(SkipNullKey): c.nullKey.Load(), string(SkipNullValue): c.nullValue.Load()}
	if p.Filter != nil {
		s.RowsSkipped[string(SkipInTable)] = c.inTable.Load()
	}
	s.RowsRead = c.read.Load()
	return s
}
