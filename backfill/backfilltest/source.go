// Package backfilltest provides in-memory sources and producers for tests
// and benchmarks of the backfill pipeline, as net/http/httptest does for
// net/http. It is never linked into the job's binary.
package backfilltest

import (
	"context"
	"errors"
	"io"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// OrderColumns are the columns of the default BigQuery query.
var OrderColumns = []backfill.Column{{Name: "user_id", Type: backfill.TypeInt64}, {Name: "min_order_id", Type: backfill.TypeInt64}}

// Source generates rows without holding them: row i is produced by Row(i).
type Source struct {
	Rows    int64
	Cols    []backfill.Column              // default OrderColumns
	Row     func(i int64, dst []any) []any // default: user i+1, order 1000*(i+1)
	FailAt  int64                          // if > 0, reading fails with FailErr at this row
	FailErr error
	// OpenErr, if set, is returned by Open.
	OpenErr error
	// Block, if set, makes the reader wait on it before each row after the first BlockAfter rows.
	Block      <-chan struct{}
	BlockAfter int64
	// ReportedRows, if > 0, is the size TotalRows reports instead of Rows,
	// as a source whose stream ends early would.
	ReportedRows int64
}

// Open implements backfill.Source.
func (s *Source) Open(ctx context.Context) (backfill.RowReader, error) {
	if s.OpenErr != nil {
		return nil, s.OpenErr
	}
	return &reader{s: s, ctx: ctx}, nil
}

// DefaultRow is user i+1 with order 1000*(i+1).
func DefaultRow(i int64, dst []any) []any {
	return append(dst[:0], i+1, 1000*(i+1))
}

// reader generates the rows and hands them over column by column, as
// the BigQuery readers do.
type reader struct {
	s   *Source
	ctx context.Context
	i   int64
	row []any
}

func (r *reader) Columns() []backfill.Column {
	if r.s.Cols != nil {
		return r.s.Cols
	}
	return OrderColumns
}

// next generates the next row into r.row; io.EOF after the last.
func (r *reader) next() error {
	if r.i >= r.s.Rows {
		return io.EOF
	}
	if r.s.FailAt > 0 && r.i == r.s.FailAt {
		return r.s.FailErr
	}
	if r.s.Block != nil && r.i >= r.s.BlockAfter {
		select {
		case <-r.s.Block:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
	gen := r.s.Row
	if gen == nil {
		gen = DefaultRow
	}
	r.row = gen(r.i, r.row)
	r.i++
	return nil
}

func (r *reader) TotalRows() (uint64, bool) {
	if r.s.ReportedRows > 0 {
		return uint64(r.s.ReportedRows), true
	}
	return uint64(r.s.Rows), true
}
func (r *reader) Path() string { return "memory" }
func (r *reader) Close() error { return nil }

// NextColumns implements backfill.RowReader.
func (r *reader) NextColumns(dst []backfill.Vector, max int) (int, error) {
	cols := r.Columns()
	for j := range dst {
		dst[j].Reset()
	}
	n := 0
	for n < max {
		if err := r.next(); err != nil {
			if n > 0 && errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		for j, col := range cols {
			if err := dst[j].Append(col, r.row[j]); err != nil {
				// As an Arrow column cannot hold another type, a mistyped
				// value is the reader's contract failure.
				return n, backfill.Errorf(backfill.KindContract, "column %s: %w", col.Name, err)
			}
		}
		n++
	}
	return n, nil
}
