package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"golang.org/x/sync/errgroup"
)

// batch carries up to BatchSize rows through the pipeline's three stages:
// read, encode (on the bounded errgroup) and send (one batch at a time).
type batch struct {
	cols []Vector // the rows, column by column
	n    int

	// The encoded records, back to back in buf: record i's key is
	// buf[offs[2i]:offs[2i+1]] and its value buf[offs[2i+1]:offs[2i+2]].
	buf  []byte
	offs []int
	// seen holds each encoded record's key and observed value, for the Observer.
	seen []KeyValue

	// Delta mode: the candidates handed to the Filter, their rows, its
	// answer and the rows it dropped.
	cand    []KeyValue
	candRow []int
	keep    []bool
	drop    []bool
}

func (b *batch) records() int { return (len(b.offs) - 1) / 2 }

// int64At returns row i's value in column col when it is a non-NULL int64.
func (b *batch) int64At(col, i int) (int64, bool) {
	v := &b.cols[col]
	if i >= len(v.Int64) || v.isNull(i) {
		return 0, false
	}
	return v.Int64[i], true
}

// fill reads the batch's rows from the source, in one NextColumns call,
// and returns its error: io.EOF at the end of the source.
func (b *batch) fill(reader RowReader, ncols, batchSize int) error {
	if len(b.cols) != ncols {
		b.cols = make([]Vector, ncols)
	}
	n, err := reader.NextColumns(b.cols, batchSize)
	b.n = n
	return err
}

func (b *batch) record(i int) (key, value []byte) {
	return b.buf[b.offs[2*i]:b.offs[2*i+1]], b.buf[b.offs[2*i+1]:b.offs[2*i+2]]
}

// move runs the three stages until the source ends, ctx ends or a stage
// fails:
//
//   - read (this goroutine) fills batches from the source;
//   - encode (at most workers goroutines, the errgroup) filters and encodes
//     each batch into its own buffer;
//   - send: the encoder of a batch then hands its records to the producer,
//     holding a mutex.
//
// The producer is called by one goroutine at a time, as a plain produce
// loop would call it: librdkafka serializes enqueueing on its own locks, so
// concurrent callers would only contend there, while the other encoders
// encode ahead. An interruption stops sending between batches: the records
// already handed over are drained by Run's flush. Records are counted as
// encoded when handed over, so that encoded == produced on every path.
//
// readErr is a source failure: the rows read before it are still sent.
// workErr is the first failure of a filter, the encoder or the producer.
func (p *Pipeline) move(ctx context.Context, reader RowReader, enc *Encoder, observed, workers, batchSize int, c *counters) (readErr, workErr error) {
	batches := sync.Pool{New: func() any { return new(batch) }}
	writers := sync.Pool{New: func() any { return enc.NewWriter() }}
	var sending sync.Mutex
	encoders, ectx := errgroup.WithContext(ctx)
	encoders.SetLimit(workers)
	readPanic := recovered(func() error {
		readErr = p.read(ectx, reader, enc.keyCol, batchSize, &batches, c, func(b *batch) {
			encoders.Go(recovered(func() error {
				w := writers.Get().(*RecordWriter)
				err := p.encode(ectx, w, b, observed, c)
				writers.Put(w)
				if err != nil {
					batches.Put(b)
					return err
				}
				sending.Lock()
				defer sending.Unlock()
				if ectx.Err() != nil {
					batches.Put(b)
					return nil // the failure or interruption is reported elsewhere
				}
				if err := p.sendBatch(ectx, b, c); err != nil {
					return err
				}
				batches.Put(b)
				return nil
			}))
		})
		return nil
	})()
	if err := encoders.Wait(); err != nil {
		return readErr, err
	}
	return readErr, readPanic
}

// panicError is a panic of a pipeline goroutine, turned into an error so
// that the run ends with a report and exit 1 rather than a crash.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("internal error (a bug; please report it with this message): panic: %v\n%s", e.value, e.stack)
}

// recovered runs fn, returning a panic as a KindInternal error.
func recovered(fn func() error) func() error {
	return func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = &Error{Kind: KindInternal, Err: &panicError{value: r, stack: debug.Stack()}}
			}
		}()
		return fn()
	}
}

// read fills batches from the source and hands each non-empty one to
// encode. It stops at the end of the source, at a read error (returned;
// the rows read before it are handed over) or when ctx ends.
//
// In a sharded run, a batch holding a row of another shard is not encoded:
// the read stops there with a contract error.
func (p *Pipeline) read(ctx context.Context, reader RowReader, keyCol, batchSize int, batches *sync.Pool, c *counters, encode func(*batch)) error {
	ncols := len(reader.Columns())
	for {
		if ctx.Err() != nil {
			return nil // a stage failed or the run was interrupted; reported by Run
		}
		b := batches.Get().(*batch)
		var eof bool
		var readErr error
		if err := b.fill(reader, ncols, batchSize); errors.Is(err, io.EOF) {
			eof = true
		} else if err != nil {
			readErr = err
		}
		first := c.read.Add(int64(b.n)) - int64(b.n) + 1
		if p.Shard.sharded() {
			if i, key, shard := p.Shard.check(b, keyCol); i >= 0 {
				batches.Put(b)
				return Errorf(KindContract, "shard %d of %d: source row %d, read through the %q read path, has key %s, which is shard %d's (|key mod %d|, NULL keys in shard 0); the run stops before producing that batch. The source broke the shard's rule: a bug, please report it; meanwhile run unsharded (shard.count=1)",
					p.Shard.Index, p.Shard.Count, first+int64(i), reader.Path(), key, shard, p.Shard.Count)
			}
		}
		if b.n > 0 && ctx.Err() == nil {
			encode(b)
		} else {
			batches.Put(b)
		}
		switch {
		case readErr != nil && ctx.Err() != nil:
			return nil
		case readErr != nil:
			// A reader's own classification (a permission or a type
			// problem) says more than "the source failed".
			return Errorf(KindOf(readErr).Or(KindSource), "reading source row %d: %w", c.read.Load()+1, readErr)
		case eof:
			return nil
		}
	}
}

// encode filters (delta mode) and encodes one batch into b.buf. It adds
// to the shared counters once per batch rather than once per row: the
// encoders would otherwise contend on their cache lines for every record.
func (p *Pipeline) encode(ctx context.Context, w *RecordWriter, b *batch, observed int, c *counters) error {
	b.buf, b.offs, b.seen = b.buf[:0], append(b.offs[:0], 0), b.seen[:0]
	if p.Filter != nil {
		if err := p.filter(ctx, w.enc, b, observed); err != nil {
			return err
		}
	}
	var nullKey, nullValue, inTable int64
	defer func() {
		c.nullKey.Add(nullKey)
		c.nullValue.Add(nullValue)
		c.inTable.Add(inTable)
	}()
	for i := range b.n {
		if p.Filter != nil && b.drop[i] {
			inTable++
			continue
		}
		key, value, skip, err := w.EncodeColumns(b.cols, i)
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
		b.buf = append(b.buf, key...)
		b.offs = append(b.offs, len(b.buf))
		b.buf = append(b.buf, value...)
		b.offs = append(b.offs, len(b.buf))
		if p.Observer != nil {
			k, okK := b.int64At(w.enc.keyCol, i)
			v, okV := b.int64At(observed, i)
			if !okK || !okV {
				return Errorf(KindContract, "verification and delta mode need an integer key and value; column %q or the observed field is not INT64", w.enc.keyColumn)
			}
			b.seen = append(b.seen, KeyValue{Key: k, Value: v})
		}
	}
	return nil
}

// sendBatch hands b's encoded records to the producer and counts them;
// move calls it for one batch at a time.
func (p *Pipeline) sendBatch(ctx context.Context, b *batch, c *counters) error {
	n := b.records()
	var sent int
	defer func() {
		c.encoded.Add(int64(sent))
		if sent > 0 {
			c.bytes.Add(int64(b.offs[2*sent]))
		}
	}()
	if p.Producer != nil {
		for i := range n {
			key, value := b.record(i)
			if err := p.Producer.Produce(ctx, key, value); err != nil {
				return err
			}
			sent++
		}
	}
	sent = n
	if p.Observer != nil && len(b.seen) > 0 {
		p.Observer.ObserveBatch(b.seen)
	}
	return nil
}

// filter asks the Filter which of the batch's rows to produce and marks
// the others in b.drop. Rows whose key or value is not an integer (NULL)
// are left to EncodeColumns, which skips and counts them.
func (p *Pipeline) filter(ctx context.Context, enc *Encoder, b *batch, observed int) error {
	b.cand, b.candRow = b.cand[:0], b.candRow[:0]
	b.drop = append(b.drop[:0], make([]bool, b.n)...)
	for i := range b.n {
		k, ok1 := b.int64At(enc.keyCol, i)
		v, ok2 := b.int64At(observed, i)
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
		// After ctx ended (a sibling failed, or the run was stopped) this
		// error is not the run's: errgroup keeps the first, Run checks ctx.
		if KindOf(err) == KindUnclassified {
			err = Errorf(KindUnavailable, "delta mode: looking keys up in ksqlDB: %w", err)
		}
		return err
	}
	for j, keep := range b.keep {
		b.drop[b.candRow[j]] = !keep
	}
	return nil
}
