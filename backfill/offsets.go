package backfill

import (
	"slices"
	"sync"
)

// Written records which offsets the broker acknowledged for the job's
// records, per partition, as sorted ranges of consecutive offsets. A
// producer's acknowledged offsets are nearly contiguous on each partition,
// so memory grows with the number of gaps (records others wrote in
// between), not with the number of records. It is safe for concurrent use.
type Written struct {
	mu    sync.Mutex
	parts []*offsetRanges // by partition
}

// offsetRanges are disjoint, sorted, inclusive [lo, hi] ranges that never
// touch (a range ending at n and one starting at n+1 are merged).
type offsetRanges struct {
	r     [][2]int64
	count int64
}

// Add records that offset on partition was acknowledged.
func (w *Written) Add(partition int32, offset int64) {
	if partition < 0 || offset < 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for int(partition) >= len(w.parts) {
		w.parts = append(w.parts, nil)
	}
	p := w.parts[partition]
	if p == nil {
		p = &offsetRanges{}
		w.parts[partition] = p
	}
	p.add(offset)
}

func (o *offsetRanges) add(off int64) {
	n := len(o.r)
	switch {
	case n == 0 || off > o.r[n-1][1]+1: // after the last range (the common case but for the first)
		o.r = append(o.r, [2]int64{off, off})
	case off == o.r[n-1][1]+1: // extends the last range (the common case)
		o.r[n-1][1] = off
	default:
		// i is the first range ending at or after off-1.
		i, _ := slices.BinarySearchFunc(o.r, off-1, func(r [2]int64, t int64) int {
			switch {
			case r[1] < t:
				return -1
			case r[1] > t:
				return 1
			}
			return 0
		})
		if i < n && o.r[i][0] <= off && off <= o.r[i][1] {
			return // already recorded
		}
		switch {
		case i < n && o.r[i][1] == off-1: // extends range i, perhaps up to range i+1
			o.r[i][1] = off
			if i+1 < n && o.r[i+1][0] == off+1 {
				o.r[i][1] = o.r[i+1][1]
				o.r = slices.Delete(o.r, i+1, i+2)
			}
		case i < n && o.r[i][0] == off+1: // starts range i one earlier
			o.r[i][0] = off
		default:
			o.r = slices.Insert(o.r, i, [2]int64{off, off})
		}
	}
	o.count++
}

// PartitionWrites returns, for each partition with an acknowledged
// record, what was written there.
func (w *Written) PartitionWrites() []PartitionWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []PartitionWrite
	for i, p := range w.parts {
		if p == nil {
			continue
		}
		out = append(out, PartitionWrite{
			Partition: int32(i), Acked: p.count, LowestOffset: p.r[0][0],
			HighestOffset: p.r[len(p.r)-1][1], Ranges: len(p.r),
		})
	}
	return out
}

// Next returns, per partition with an acknowledged record, the offset
// after the highest one: the offset a consumer must reach to have read
// everything the job wrote.
func (w *Written) Next() map[int32]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[int32]int64{}
	for i, p := range w.parts {
		if p != nil {
			out[int32(i)] = p.r[len(p.r)-1][1] + 1
		}
	}
	return out
}

// Gaps returns the offsets in [from, to] on partition that were not
// acknowledged, as inclusive ranges.
func (w *Written) Gaps(partition int32, from, to int64) [][2]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ranges [][2]int64
	if int(partition) < len(w.parts) && w.parts[partition] != nil {
		ranges = w.parts[partition].r
	}
	var out [][2]int64
	next := from
	for _, r := range ranges {
		if r[1] < next {
			continue
		}
		if r[0] > to {
			break
		}
		if r[0] > next {
			out = append(out, [2]int64{next, r[0] - 1})
		}
		next = r[1] + 1
	}
	if next <= to {
		out = append(out, [2]int64{next, to})
	}
	return out
}

// PartitionWrite is what the job wrote to one partition, for the report.
type PartitionWrite struct {
	Partition int32 `json:"partition"`
	// EndOffsetBefore is the partition's end offset before the first
	// record was produced; -1 when it was not read.
	EndOffsetBefore int64 `json:"end_offset_before"`
	Acked           int64 `json:"records_acked"`
	LowestOffset    int64 `json:"lowest_acked_offset"`
	HighestOffset   int64 `json:"highest_acked_offset"`
	// Ranges counts the runs of consecutive acknowledged offsets: 1 when
	// nothing else was written to the partition meanwhile.
	Ranges int `json:"offset_ranges"`
}

// Watermarks are a partition's log start and end offsets: the partition
// holds records at offsets Start to End-1.
type Watermarks struct {
	Partition int32 `json:"partition"`
	Start     int64 `json:"log_start_offset"`
	End       int64 `json:"log_end_offset"`
}
