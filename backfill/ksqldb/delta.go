package ksqldb

import (
	"context"
	"sync/atomic"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Delta is a backfill.Filter for reruns: it looks each batch's keys up in
// the table and keeps only the records the table lacks or holds a larger
// minimum for. Re-sending a user's current minimum would make
// stream_min_order emit first_order=true again for that user.
type Delta struct {
	c         *Client
	facts     Facts
	batchKeys int
	stream    atomic.Bool

	missing, larger, present, smaller atomic.Int64
}

var _ backfill.Filter = (*Delta)(nil)

// NewDelta returns the delta filter over the table described by facts
// (from Preflight), looking keys up batchKeys at a time.
func (c *Client) NewDelta(facts Facts, batchKeys int) *Delta {
	d := &Delta{c: c, facts: facts, batchKeys: max(batchKeys, 1)}
	d.stream.Store(supportsQueryStream(facts.ServerVersion) && !facts.StandbyReads)
	return d
}

// Keep implements backfill.Filter.
func (d *Delta) Keep(ctx context.Context, records []backfill.KeyValue, keep []bool) error {
	keys := make([]int64, 0, d.batchKeys)
	for start := 0; start < len(records); start += d.batchKeys {
		chunk := records[start:min(start+d.batchKeys, len(records))]
		keys = keys[:0]
		for _, kv := range chunk {
			keys = append(keys, kv.Key)
		}
		stream := d.stream.Load()
		rows, err := d.c.pull(ctx, &d.facts, keys, stream)
		if err != nil && stream && notServed(err) {
			d.stream.Store(false)
			rows, err = d.c.pull(ctx, &d.facts, keys, false)
		}
		if err != nil {
			return err
		}
		for i, kv := range chunk {
			got, ok := rows[kv.Key]
			switch {
			case !ok || got.null:
				d.missing.Add(1)
				keep[start+i] = true
			case got.value > kv.Value:
				d.larger.Add(1)
				keep[start+i] = true
			case got.value == kv.Value:
				d.present.Add(1)
			default:
				d.smaller.Add(1)
			}
		}
	}
	return nil
}

// Counts returns what the filter decided so far.
func (d *Delta) Counts() backfill.Delta {
	return backfill.Delta{Missing: d.missing.Load(), TableLarger: d.larger.Load(), AlreadyPresent: d.present.Load(), TableSmaller: d.smaller.Load()}
}
