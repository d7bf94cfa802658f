package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// KeyValue is one record handed to the producer, as the key column's value
// and the observed value field's value.
type KeyValue struct {
	Key, Value int64
}

// Observer sees the records that were handed to the producer, a batch at a
// time, from several goroutines at once. Verification uses it to remember
// what it must find in ksqlDB. The slice is reused after the call returns.
type Observer interface {
	ObserveBatch(records []KeyValue)
}

// Filter decides which records need producing; delta mode uses it to skip
// what ksqlDB already holds. Keep is called from several goroutines at
// once and sets keep[i] for records[i].
type Filter interface {
	Keep(ctx context.Context, records []KeyValue, keep []bool) error
}

// Pipeline reads rows from a source, encodes them on a bounded number of
// goroutines and hands them to a producer, accounting for every row.
type Pipeline struct {
	Source   Source
	Codec    *Codec
	Mapping  Mapping
	Producer Producer // nil runs dry: rows are read and encoded, nothing is produced
	Observer Observer // optional
	Filter   Filter   // optional: drops records that need not be produced (delta mode)
	// ObserveField is the value field whose value the Observer sees; empty
	// means the value schema's first field. It must be a long or int field.
	ObserveField string

	Workers       int           // goroutines encoding and producing at once (the errgroup limit)
	BatchSize     int           // rows handed to one goroutine at a time
	FlushTimeout  time.Duration // how long to wait for outstanding deliveries after the last row
	DrainTimeout  time.Duration // how long to wait for them after an interruption (SIGTERM); 0 means FlushTimeout
	ProgressEvery time.Duration // how often to log progress; 0 disables it
	AllowEmpty    bool          // a result with no rows is a success rather than a failure
	Logger        *slog.Logger
}

// counters are the pipeline's live totals.
type counters struct {
	read, encoded, bytes        atomic.Int64
	nullKey, nullValue, inTable atomic.Int64
}

type batch struct {
	rows [][]any
	n    int
	seen []KeyValue
	// Delta mode: the candidates handed to the Filter, their rows, its answer
	// and the rows it dropped.
	cand    []KeyValue
	candRow []int
	keep    []bool
	drop    []bool
}

// Run moves every row and fills rep with what happened. The error it
// returns is an *Error whose kind tells why the run failed. When ctx ends
// (SIGTERM), Run stops reading, waits up to DrainTimeout for the records in
// flight and returns a KindInterrupted error.
func (p *Pipeline) Run(ctx context.Context, rep *Report) error {
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	workers, batchSize := max(p.Workers, 1), max(p.BatchSize, 1)
	rep.DryRun = p.Producer == nil
	rep.KeySchemaID, rep.ValueSchemaID = p.Codec.schemas.Key.ID, p.Codec.schemas.Value.ID

	reader, err := p.Source.Open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Errorf(KindInterrupted, "interrupted while starting the source query: %w", err)
		}
		if KindOf(err) != KindInternal {
			return err
		}
		return Errorf(KindSource, "starting the source query: %w", err)
	}
	defer reader.Close()
	rep.SourcePath = reader.Path()
	total, totalKnown := reader.TotalRows()
	if totalKnown {
		t := int64(total)
		rep.SourceTotal = &t
	}
	enc, err := p.Codec.Bind(p.Mapping, reader.Columns())
	if err != nil {
		return err
	}
	observed := -1
	if p.Observer != nil || p.Filter != nil {
		if observed, err = enc.intField(p.ObserveField); err != nil {
			return err
		}
	}
	log.Info("source open", "path", reader.Path(), "total_rows", total, "total_known", totalKnown,
		"mapping", enc.Describe(), "workers", workers, "batch_size", batchSize, "dry_run", rep.DryRun)

	var c counters
	stopProgress := p.startProgress(log, &c, total, totalKnown)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var produceMu sync.Mutex // one batch at a time goes into the producer (see process)
	pool := sync.Pool{New: func() any { return enc.NewWriter() }}
	batches := sync.Pool{New: func() any { return &batch{rows: make([][]any, batchSize)} }}

	readErr := func() error {
		for {
			if err := gctx.Err(); err != nil {
				return nil // a worker failed or the run was interrupted; reported below
			}
			b := batches.Get().(*batch)
			b.n = 0
			var eof bool
			var readErr error
			for b.n < batchSize {
				if err := reader.Next(&b.rows[b.n]); err != nil {
					if errors.Is(err, io.EOF) {
						eof = true
					} else {
						readErr = err
					}
					break
				}
				b.n++
			}
			c.read.Add(int64(b.n))
			// The rows read before an error are produced like any others.
			if b.n > 0 && gctx.Err() == nil {
				g.Go(func() error {
					defer batches.Put(b)
					w := pool.Get().(*RecordWriter)
					defer pool.Put(w)
					return p.process(gctx, w, b, observed, &c, &produceMu)
				})
			} else {
				batches.Put(b)
			}
			switch {
			case readErr != nil && gctx.Err() != nil:
				return nil
			case readErr != nil:
				return Errorf(KindSource, "reading source row %d: %w", c.read.Load()+1, readErr)
			case eof:
				return nil
			}
		}
	}()
	workErr := g.Wait()
	stopProgress()

	var flushErr error
	if p.Producer != nil {
		wait := p.FlushTimeout
		if ctx.Err() != nil && p.DrainTimeout > 0 {
			wait = p.DrainTimeout
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
		flushErr = p.Producer.Flush(fctx)
		cancel()
		d := p.Producer.Deliveries()
		rep.RecordsProduced, rep.RecordsAcked, rep.RecordsFailed = d.Produced, d.Acked, d.Failed
		rep.DeliveryErrors = d.Errors
	}
	rep.RowsRead, rep.RecordsEncoded, rep.Bytes = c.read.Load(), c.encoded.Load(), c.bytes.Load()
	rep.RowsSkipped = map[string]int64{string(SkipNullKey): c.nullKey.Load(), string(SkipNullValue): c.nullValue.Load()}
	if p.Filter != nil {
		rep.RowsSkipped[string(SkipInTable)] = c.inTable.Load()
	}
	undelivered := rep.RecordsProduced - rep.RecordsAcked - rep.RecordsFailed

	switch {
	case ctx.Err() != nil:
		return Errorf(KindInterrupted, "interrupted after reading %d rows: %d records acknowledged, %d failed, %d undelivered; rerun the job to finish the backfill",
			rep.RowsRead, rep.RecordsAcked, rep.RecordsFailed, undelivered)
	case readErr != nil:
		return p.withDeliveries(readErr, rep)
	case workErr != nil:
		return p.withDeliveries(workErr, rep)
	case rep.RecordsFailed > 0:
		return Errorf(KindProduce, "%d of %d records failed delivery (first error: %s); rerun the job once the cause is fixed", rep.RecordsFailed, rep.RecordsProduced, firstOf(rep.DeliveryErrors))
	case flushErr != nil || undelivered > 0:
		return Errorf(KindProduce, "%d records still undelivered after waiting %s for acknowledgements: %v", undelivered, p.FlushTimeout, flushErr)
	case rep.RowsRead == 0 && !p.AllowEmpty:
		return Errorf(KindContract, "the source query returned no rows; check the query and table, or allow an empty result")
	}
	return nil
}

// process encodes and produces one batch. It adds to the shared counters
// once per batch rather than once per row: the workers would otherwise
// contend on the counters' cache lines for every record.
//
// Workers filter (which may wait on the network) at the same time, but
// encode and produce one batch at a time, under produceMu: librdkafka
// serializes enqueueing on its own locks, and workers enqueueing at once
// only contend on them (about 10 % fewer rows/s and 10 % more CPU in
// docs/performance.md). One lock per batch costs nothing per row.
func (p *Pipeline) process(ctx context.Context, w *RecordWriter, b *batch, observed int, c *counters, produceMu *sync.Mutex) error {
	var encoded, nbytes, nullKey, nullValue int64
	defer func() {
		c.encoded.Add(encoded)
		c.bytes.Add(nbytes)
		c.nullKey.Add(nullKey)
		c.nullValue.Add(nullValue)
	}()
	b.seen = b.seen[:0]
	rows := b.rows[:b.n]
	if p.Filter != nil {
		if err := p.filter(ctx, w.enc, b, observed); err != nil {
			return err
		}
	}
	var inTable int64
	defer func() { c.inTable.Add(inTable) }()
	locked := p.Producer != nil
	if locked {
		produceMu.Lock()
	}
	defer func() {
		if locked {
			produceMu.Unlock()
		}
	}()
	for i, row := range rows {
		if p.Filter != nil && b.drop[i] {
			inTable++
			continue
		}
		key, value, skip, err := w.Encode(row)
		if err != nil {
			return Errorf(KindContract, "encoding source row: %w", err)
		}
		switch skip {
		case SkipNullKey:
			nullKey++
			continue
		case SkipNullValue:
			nullValue++
			continue
		}
		if p.Producer != nil {
			if err := p.Producer.Produce(ctx, key, value); err != nil {
				return err
			}
		}
		// Counted once handed over, so that encoded == produced on every path.
		encoded++
		nbytes += int64(len(key) + len(value))
		if p.Observer != nil {
			b.seen = append(b.seen, KeyValue{Key: row[w.enc.keyCol].(int64), Value: row[observed].(int64)})
		}
	}
	if locked {
		produceMu.Unlock()
		locked = false
	}
	if len(b.seen) > 0 {
		p.Observer.ObserveBatch(b.seen)
	}
	return nil
}

// filter asks the Filter which of the batch's rows to produce and marks
// the others in b.drop. Rows whose key or value is not an integer (NULL)
// are left to Encode, which skips and counts them.
func (p *Pipeline) filter(ctx context.Context, enc *Encoder, b *batch, observed int) error {
	b.cand, b.candRow = b.cand[:0], b.candRow[:0]
	b.drop = append(b.drop[:0], make([]bool, b.n)...)
	for i, row := range b.rows[:b.n] {
		k, ok1 := row[enc.keyCol].(int64)
		v, ok2 := row[observed].(int64)
		if ok1 && ok2 {
			b.cand = append(b.cand, KeyValue{Key: k, Value: v})
			b.candRow = append(b.candRow, i)
		}
	}
	if len(b.cand) == 0 {
		return nil
	}
	b.keep = append(b.keep[:0], make([]bool, len(b.cand))...)
	if err := p.Filter.Keep(ctx, b.cand, b.keep); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if KindOf(err) == KindInternal {
			err = Errorf(KindUnavailable, "delta mode: looking keys up in ksqlDB: %w", err)
		}
		return err
	}
	for j, keep := range b.keep {
		b.drop[b.candRow[j]] = !keep
	}
	return nil
}

// withDeliveries adds the delivery accounting to a failure's message.
func (p *Pipeline) withDeliveries(err error, rep *Report) error {
	if p.Producer == nil {
		return err
	}
	k := KindOf(err)
	if k == KindInternal {
		k = KindProduce
	}
	return &Error{Kind: k, Err: fmt.Errorf("%w (%d records produced: %d acknowledged, %d failed, %d undelivered)",
		err, rep.RecordsProduced, rep.RecordsAcked, rep.RecordsFailed, rep.RecordsProduced-rep.RecordsAcked-rep.RecordsFailed)}
}

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

func firstOf(s []string) string {
	if len(s) == 0 {
		return "unknown"
	}
	return s[0]
}
