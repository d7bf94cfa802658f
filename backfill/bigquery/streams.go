package bigquery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	gax "github.com/googleapis/gax-go/v2"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// readRowsClient is the part of the Storage Read API client the stream
// reader uses.
type readRowsClient interface {
	ReadRows(ctx context.Context, req *storagepb.ReadRowsRequest, opts ...gax.CallOption) (storagepb.BigQueryRead_ReadRowsClient, error)
}

// DefaultReadRetryTimeout is how long a stream may keep failing with
// retryable errors without delivering a row when ReadRetryTimeout is
// unset.
const DefaultReadRetryTimeout = 10 * time.Minute

// streamRetry is how a stream is resumed after a retryable error: with
// backoff between attempts, for as long as budget allows without a row
// delivered (a response that brings rows starts the budget afresh).
type streamRetry struct {
	budget  time.Duration
	backoff gax.Backoff
}

// defaultStreamBackoff is the pause between attempts to resume a stream:
// the official client's (gax defaults: 1 s doubling to 30 s), from 250 ms.
var defaultStreamBackoff = gax.Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// streamReader is a backfill.RowReader over a read session's streams,
// read in parallel, one goroutine per stream of an errgroup: the first
// stream failure cancels the others. Records reach NextColumns through a
// bounded channel, so memory holds at most a few batches per stream.
type streamReader struct {
	cols       []backfill.Column
	total      uint64
	totalKnown bool
	session    string
	closeFn    func() error

	// recs is closed once every stream has ended; err, the first stream
	// failure, is set before.
	recs   chan arrow.Record
	err    error
	cancel context.CancelFunc

	cur  arrow.Record
	vals []column
	i, n int
}

// readStreams starts reading every stream of the session.
func readStreams(ctx context.Context, client readRowsClient, sess *storagepb.ReadSession, dec *decoder, retry streamRetry, log logger) *streamReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &streamReader{
		cols:    arrowColumns(dec.schema),
		session: sess.GetName(),
		recs:    make(chan arrow.Record, 2*len(sess.GetStreams())+1),
		cancel:  cancel,
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, st := range sess.GetStreams() {
		name, sdec := st.GetName(), dec.clone()
		g.Go(func() error { return r.readStream(gctx, client, name, sdec, retry, log) })
	}
	go func() {
		r.err = g.Wait()
		close(r.recs)
	}()
	return r
}

// logger is the part of slog.Logger the reader uses.
type logger interface {
	Warn(msg string, args ...any)
}

// readStream reads one stream to its end, resuming at the row offset
// after a retryable error, as the official client does
// (cloud.google.com/go/bigquery v1.86.2 storage_iterator.go,
// processStream and retryReadRows): without an attempt bound, but within
// retry.budget of the last row delivered. An expired session or a table
// replaced under it (FailedPrecondition, NotFound) cannot be resumed: the
// stream fails with a retryable exit, and the next attempt of the Job
// reads afresh. Re-creating the session here is not sound: streams are
// split dynamically, so a new session's streams do not line up with the
// rows already delivered.
func (r *streamReader) readStream(ctx context.Context, client readRowsClient, name string, dec *decoder, retry streamRetry, log logger) error {
	var offset int64
	bo := retry.backoff
	since := time.Now() // the last progress, or the start
	for attempt := 1; ; attempt++ {
		rows, err := client.ReadRows(ctx, &storagepb.ReadRowsRequest{ReadStream: name, Offset: offset}, recvLimit)
		if err == nil {
			var progressed bool
			progressed, err = r.consume(ctx, rows, dec, &offset)
			if progressed {
				attempt, since, bo = 1, time.Now(), retry.backoff
			}
			if err == nil {
				return nil
			}
			var bad *badStream
			if errors.As(err, &bad) {
				return fmt.Errorf("stream %s at row %d: %w", name, offset, bad.err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		what := fmt.Sprintf("reading Storage Read API stream %s at row %d (attempt %d)", name, offset, attempt)
		switch code := status.Code(err); {
		case code == codes.FailedPrecondition || code == codes.NotFound:
			return backfill.Errorf(backfill.KindSource, "%s: the read session expired (sessions last 6 h) or its table was replaced or deleted (%s): the Job's next attempt reads the result afresh: %w", what, code, err)
		case !retryable(err):
			return classifyRPC(err, what)
		}
		pause := bo.Pause()
		if time.Since(since)+pause > retry.budget {
			return backfill.Errorf(backfill.KindSource, "%s: no row delivered for %s, and retrying further would exceed bigquery.read_retry_timeout=%s: the Job's next attempt may succeed: %w",
				what, time.Since(since).Round(time.Millisecond), retry.budget, err)
		}
		log.Warn("bigquery storage stream broke; resuming at its row offset", "stream", name, "offset", offset, "attempt", attempt, "retry_in", pause, "error", err)
		if err := gax.Sleep(ctx, pause); err != nil {
			return err
		}
	}
}

// recvLimit is ReadRows' receive limit, as the official client sets it
// (v1.86.2 storage_client.go): a response may take up to 128 MiB.
var recvLimit = gax.WithGRPCOptions(grpc.MaxCallRecvMsgSize(grpcRecvLimit))

// badStream is a stream whose data cannot be decoded or does not add up:
// retrying cannot help.
type badStream struct{ err error }

func (e *badStream) Error() string { return e.err.Error() }

// consume decodes one ReadRows call's responses and hands their records
// to NextColumns, advancing offset by the rows handed. It returns nil at the
// stream's clean end, the gRPC error of a broken call, or a *badStream.
func (r *streamReader) consume(ctx context.Context, rows storagepb.BigQueryRead_ReadRowsClient, dec *decoder, offset *int64) (progressed bool, err error) {
	msgs := newMessages(dec, rows.Recv)
	rdr, err := ipc.NewReaderFromMessageReader(msgs, ipc.WithSchema(dec.schema), ipc.WithAllocator(dec.mem))
	if err != nil { // only the session's schema has been read yet
		return false, &badStream{fmt.Errorf("starting to decode Arrow record batches: %w", err)}
	}
	defer rdr.Release()
	for rdr.Next() {
		rec := rdr.Record()
		n := rec.NumRows()
		if msgs.pending -= n; msgs.pending < 0 {
			return progressed, &badStream{fmt.Errorf("a response's record batches hold %d rows more than it announced", -msgs.pending)}
		}
		rec.Retain()
		select {
		case r.recs <- rec:
		case <-ctx.Done():
			rec.Release()
			return progressed, ctx.Err()
		}
		*offset += n
		progressed = true
	}
	switch err := rdr.Err(); {
	case err == nil:
		if msgs.pending != 0 {
			return progressed, &badStream{fmt.Errorf("the stream ended %d rows short of what its last response announced", msgs.pending)}
		}
		return progressed, nil
	case status.Code(err) != codes.Unknown:
		return progressed, err // a broken call: maybe retryable
	default:
		return progressed, &badStream{err}
	}
}

// retryable reports whether a ReadRows failure may pass on a new attempt
// at the same offset: the codes the official client retries (v1.86.2
// storage_iterator.go retryReadRows), less Canceled, which here means the
// run is stopping.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Aborted, codes.DeadlineExceeded, codes.Internal, codes.Unavailable:
		return true
	}
	return false
}

func (r *streamReader) Columns() []backfill.Column { return r.cols }

// advance makes the current record hold an unread row, taking the next
// record from the streams when needed. It returns io.EOF after the last
// row, or the first stream failure.
func (r *streamReader) advance() error {
	for r.i >= r.n {
		if r.cur != nil {
			r.cur.Release()
			r.cur = nil
		}
		rec, ok := <-r.recs
		if !ok {
			if r.err != nil {
				return r.err
			}
			return io.EOF
		}
		r.cur, r.i, r.n = rec, 0, int(rec.NumRows())
		r.vals = r.vals[:0]
		for _, a := range rec.Columns() {
			r.vals = append(r.vals, newColumn(a))
		}
	}
	return nil
}

// NextColumns implements backfill.RowReader: it copies up to max rows
// of the current record batch, column by column.
func (r *streamReader) NextColumns(dst []backfill.Vector, max int) (int, error) {
	if err := r.advance(); err != nil {
		return 0, err
	}
	n := min(max, r.n-r.i)
	for j := range r.vals {
		if err := r.vals[j].copyRows(&dst[j], r.i, n); err != nil {
			return 0, backfill.Errorf(backfill.KindContract, "column %s: %w", r.cols[j].Name, err)
		}
	}
	r.i += n
	return n, nil
}

func (r *streamReader) TotalRows() (uint64, bool) { return r.total, r.totalKnown }

func (r *streamReader) Path() string { return PathStorage }

// Close stops the streams, releases the records in flight and closes the
// clients.
func (r *streamReader) Close() error {
	r.cancel()
	for rec := range r.recs { // until every stream has ended
		rec.Release()
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.closeFn != nil {
		return r.closeFn()
	}
	return nil
}
