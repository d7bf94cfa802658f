package backfill

import "strconv"

// Shard is the part of the key space one run owns: the keys k with
// |k mod Count| = Index, NULL keys in shard 0, as the BigQuery source's
// query selects them. Count 0 or 1 owns every key.
type Shard struct{ Index, Count int }

// sharded reports whether the run owns part of the key space only.
func (s Shard) sharded() bool { return s.Count > 1 }

// of returns the shard of a key; null marks a NULL key.
func (s Shard) of(key int64, null bool) int {
	if null {
		return 0
	}
	m := key % int64(s.Count)
	if m < 0 {
		m = -m
	}
	return int(m)
}

// check returns the first row of b whose key belongs to another
// shard, with the key as text, or -1. Keys that are not INT64 values or
// NULL are left to the encoder.
func (s Shard) check(b *batch, keyCol int) (row int, key string, shard int) {
	for i := range b.n {
		var k int64
		v := &b.cols[keyCol]
		null := v.isNull(i)
		if !null {
			if i >= len(v.Int64) {
				continue
			}
			k = v.Int64[i]
		}
		if got := s.of(k, null); got != s.Index {
			if null {
				return i, "NULL", got
			}
			return i, strconv.FormatInt(k, 10), got
		}
	}
	return -1, "", 0
}
