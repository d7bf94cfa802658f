package backfill

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
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
// goroutines and hands them to a producer from one goroutine, accounting
// for every row.
type Pipeline struct {
	Source   Source
	Codec    *Codec
	Mapping  Mapping
	Producer Producer // nil runs dry: rows are read and encoded, nothing is produced
	Observer Observer // optional
	Filter   Filter   // optional: drops records that need not be produced (delta mode)

	Workers       int           // goroutines filtering and encoding at once (the errgroup limit); one more hands records to the producer
	BatchSize     int           // rows handed to one goroutine at a time
	FlushTimeout  time.Duration // how long to wait for outstanding deliveries after the last row
	DrainTimeout  time.Duration // how long to wait for them after an interruption (SIGTERM); 0 means FlushTimeout
	ProgressEvery time.Duration // how often to log progress; 0 disables it
	AllowEmpty    bool          // a result with no rows is a success rather than a failure
	// Shard, when its Count is above 1, is the part of the key space the
	// run owns: every row is checked against it before it is encoded, on
	// every read path, and a row of another shard stops the run (contract).
	Shard Shard
	// OnOpen, if set, sees the result's size (when the source knows it)
	// before the first row is read; an error ends the run with nothing read.
	OnOpen func(totalRows uint64, known bool) error
	// OnProgress, if set, gets the counters every ProgressSnapshotEvery
	// while rows move and the producer flushes, and once more, final,
	// before Run returns. It is called from one goroutine at a time.
	OnProgress func(Progress)
	Logger     *slog.Logger
}

// ProgressSnapshotEvery is how often Pipeline.OnProgress is called.
const ProgressSnapshotEvery = time.Second

// counters are the pipeline's live totals.
type counters struct {
	read, encoded, bytes        atomic.Int64
	nullKey, nullValue, inTable atomic.Int64
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

	reader, err := p.open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Errorf(KindInterrupted, "interrupted while starting the source query: %w", err)
		}
		if KindOf(err) != KindUnclassified {
			return err
		}
		return Errorf(KindSource, "starting the source query: %w", err)
	}
	defer reader.Close()
	rep.SourcePath = reader.Path()
	if f, ok := reader.(FallbackReader); ok {
		rep.SourceFallback = f.Fallback()
	}
	total, totalKnown := reader.TotalRows()
	if totalKnown {
		t := int64(total)
		rep.SourceTotal = &t
	}
	if p.OnOpen != nil {
		if err := p.OnOpen(total, totalKnown); err != nil {
			return err
		}
	}
	enc, err := p.Codec.Bind(p.Mapping, reader.Columns())
	if err != nil {
		return err
	}
	if p.Shard.sharded() && reader.Columns()[enc.keyCol].Type != TypeInt64 {
		return Errorf(KindContract, "shard.count=%d splits the keys by |key mod %d|, but key column %q is %s, not INT64: run unsharded (shard.count=1)",
			p.Shard.Count, p.Shard.Count, enc.keyColumn, reader.Columns()[enc.keyCol].Type)
	}
	observed := -1
	if p.Observer != nil || p.Filter != nil {
		if observed, err = enc.observedField(); err != nil {
			return err
		}
	}
	log.Info("source open", "path", reader.Path(), "total_rows", total, "total_known", totalKnown,
		"mapping", enc.Describe(), "workers", workers, "batch_size", batchSize, "dry_run", rep.DryRun)

	var c counters
	stopSnapshots := p.startSnapshots(&c)
	stopProgress := p.startProgress(log, &c, total, totalKnown)
	readErr, workErr := p.move(ctx, reader, enc, observed, workers, batchSize, &c)
	stopProgress()

	var flushErr error
	if p.Producer != nil {
		wait := p.FlushTimeout
		if ctx.Err() != nil && p.DrainTimeout > 0 {
			wait = p.DrainTimeout
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
		stopDrain := p.drainOnSignal(ctx, cancel)
		flushErr = p.Producer.Flush(fctx)
		stopDrain()
		cancel()
		d := p.Producer.Deliveries()
		rep.RecordsProduced, rep.RecordsAcked, rep.RecordsFailed = d.Produced, d.Acked, d.Failed
		rep.DeliveryErrors = d.Errors
	}
	stopSnapshots()
	if p.OnProgress != nil {
		p.OnProgress(p.snapshot(&c))
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
		return Errorf(KindProduce, "%d records still undelivered after waiting %s for acknowledgements: %w", undelivered, p.FlushTimeout, flushErr)
	case totalKnown && rep.RowsRead != int64(total):
		return Errorf(KindSource, "the source reported %d rows but %d were read: the result stream ended early; rerun the job", total, rep.RowsRead)
	case rep.RowsRead == 0 && !p.AllowEmpty:
		return Errorf(KindContract, "the source query returned no rows; check the query and table, or allow an empty result")
	case rep.RowsRead > 0 && rep.RecordsEncoded == 0 && c.inTable.Load() == 0:
		return Errorf(KindContract, "the source query returned %d rows but none was produced: every row was skipped (%d with a NULL key, %d with a NULL value); check the query's columns and the mapping",
			rep.RowsRead, c.nullKey.Load(), c.nullValue.Load())
	}
	return nil
}

// drainOnSignal cuts a flush that started before ctx ended (SIGTERM) to
// DrainTimeout after it ends, by calling cancel; the returned func stops
// watching once the flush is over.
func (p *Pipeline) drainOnSignal(ctx context.Context, cancel context.CancelFunc) (stop func()) {
	if ctx.Err() != nil || p.DrainTimeout <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-ctx.Done():
			t := time.NewTimer(p.DrainTimeout)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				cancel()
			}
		}
	}()
	return func() { close(done) }
}

// withDeliveries adds the delivery accounting to a failure's message.
func (p *Pipeline) withDeliveries(err error, rep *Report) error {
	if p.Producer == nil {
		return err
	}
	return &Error{Kind: KindOf(err).Or(KindProduce), Err: fmt.Errorf("%w (%d records produced: %d acknowledged, %d failed, %d undelivered)",
		err, rep.RecordsProduced, rep.RecordsAcked, rep.RecordsFailed, rep.RecordsProduced-rep.RecordsAcked-rep.RecordsFailed)}
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return "unknown"
	}
	return s[0]
}
