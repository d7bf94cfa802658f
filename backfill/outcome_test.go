package backfill_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

// TestShortReadFailsWithSourceExit: a source that reports 150 rows but
// streams 100 is a failed read (exit 4), never a success.
func TestShortReadFailsWithSourceExit(t *testing.T) {
	t.Parallel()
	prod := &backfilltest.Producer{}
	src := &backfilltest.Source{Rows: 100, ReportedRows: 150}
	rep := &backfill.Report{}
	err := pipeline(t, src, prod).Run(context.Background(), rep)
	if backfill.KindOf(err) != backfill.KindSource || !strings.Contains(err.Error(), "150") || !strings.Contains(err.Error(), "100") {
		t.Fatalf("kind %v: %v", backfill.KindOf(err), err)
	}
	if rep.RowsRead != 100 || rep.RecordsAcked != 100 {
		t.Fatalf("report %+v", rep)
	}
}

// TestNothingProducedFromRowsFailsUnlessDeltaSkippedThem: 100 rows that
// are all skipped (NULL values) produce nothing: a contract failure
// (exit 3), not a success. Rows that delta mode found already in the
// table are the one way to produce nothing and succeed.
func TestNothingProducedFromRowsFailsUnlessDeltaSkippedThem(t *testing.T) {
	t.Parallel()
	nullValues := func(i int64, dst []any) []any { return append(dst[:0], i+1, nil) }
	rep := &backfill.Report{}
	err := pipeline(t, &backfilltest.Source{Rows: 100, Row: nullValues}, &backfilltest.Producer{}).Run(context.Background(), rep)
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "none was produced") || rep.RowsSkipped["null_value"] != 100 {
		t.Fatalf("kind %v: %v (report %+v)", backfill.KindOf(err), err, rep)
	}

	p := pipeline(t, &backfilltest.Source{Rows: 100}, &backfilltest.Producer{})
	p.Filter = keepNone{}
	rep = &backfill.Report{}
	if err := p.Run(context.Background(), rep); err != nil || rep.RecordsProduced != 0 || rep.RowsSkipped["in_table"] != 100 {
		t.Fatalf("delta skipping every row: %v (report %+v)", err, rep)
	}
}

// keepNone is a delta filter that finds every record already in the table.
type keepNone struct{}

func (keepNone) Keep(context.Context, []backfill.KeyValue, []bool) error { return nil }

// TestOnOpenCanRefuseTheResultBeforeAnythingIsProduced: the hook sees the
// result's size before the first row is read; its error ends the run with
// nothing produced.
func TestOnOpenCanRefuseTheResultBeforeAnythingIsProduced(t *testing.T) {
	t.Parallel()
	prod := &backfilltest.Producer{}
	p := pipeline(t, &backfilltest.Source{Rows: 100}, prod)
	var seen uint64
	p.OnOpen = func(total uint64, known bool) error {
		seen = total
		return backfill.Errorf(backfill.KindConfig, "too big")
	}
	rep := &backfill.Report{}
	err := p.Run(context.Background(), rep)
	if backfill.KindOf(err) != backfill.KindConfig || seen != 100 || rep.RowsRead != 0 || len(prod.Records()) != 0 {
		t.Fatalf("kind %v: %v; seen %d, report %+v", backfill.KindOf(err), err, seen, rep)
	}
}
