package backfill_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

// shardRows are keys -7..7 and a NULL key, each with an order.
func shardRows(i int64, dst []any) []any {
	if i == 15 {
		return append(dst[:0], nil, int64(1))
	}
	return append(dst[:0], i-7, 1000+i)
}

// Every row of its own shard passes, negative keys and NULL keys (shard
// 0) included; a row of another shard stops the run, naming its key.
func TestShardRuleHoldsOnEveryReadPath(t *testing.T) {
	t.Parallel()
	for shard := range 3 {
		src := &backfilltest.Source{Rows: 16, Row: func(i int64, dst []any) []any {
			dst = shardRows(i, dst)
			k, _ := dst[0].(int64)
			if m := k % 3; dst[0] == nil && shard == 0 || dst[0] != nil && (m == int64(shard) || m == -int64(shard)) {
				return dst
			}
			return append(dst[:0], int64(shard), int64(5)) // replaced: a key of this shard
		}}
		prod := &backfilltest.Producer{Keep: true}
		p := pipeline(t, src, prod)
		p.Shard = backfill.Shard{Index: shard, Count: 3}
		p.AllowEmpty = true
		var rep backfill.Report
		if err := p.Run(context.Background(), &rep); err != nil {
			t.Fatalf("shard %d: %v", shard, err)
		}
		if rep.RowsRead != 16 {
			t.Fatalf("shard %d: read %d rows", shard, rep.RowsRead)
		}
	}
	// Shard 2 of 3 handed keys -7..7: -7 is shard 1's.
	src := &backfilltest.Source{Rows: 16, Row: shardRows}
	prod := &backfilltest.Producer{Keep: true}
	p := pipeline(t, src, prod)
	p.Shard = backfill.Shard{Index: 2, Count: 3}
	var rep backfill.Report
	err := p.Run(context.Background(), &rep)
	if backfill.KindOf(err) != backfill.KindContract || !strings.Contains(err.Error(), "key -7, which is shard 1's") || !strings.Contains(err.Error(), "source row 1,") {
		t.Fatalf("%v (kind %s)", err, backfill.KindOf(err))
	}
	if len(prod.Records()) != 0 {
		t.Fatalf("%d records produced from a batch holding another shard's row", len(prod.Records()))
	}
}
