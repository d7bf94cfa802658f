package backfill

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestWrittenKeepsRangesAndGaps(t *testing.T) {
	t.Parallel()
	var w Written
	for _, o := range []int64{10, 11, 12, 20, 13, 15, 14, 19, 12, 30} {
		w.Add(1, o)
	}
	w.Add(0, 0)
	got := w.PartitionWrites()
	want := []PartitionWrite{
		{Partition: 0, Acked: 1, LowestOffset: 0, HighestOffset: 0, Ranges: 1},
		{Partition: 1, Acked: 9, LowestOffset: 10, HighestOffset: 30, Ranges: 3}, // 10-15, 19-20, 30
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PartitionWrites = %+v\nwant %+v", got, want)
	}
	if gaps := w.Gaps(1, 8, 31); !reflect.DeepEqual(gaps, [][2]int64{{8, 9}, {16, 18}, {21, 29}, {31, 31}}) {
		t.Fatalf("Gaps = %v", gaps)
	}
	if gaps := w.Gaps(1, 10, 15); gaps != nil {
		t.Fatalf("Gaps inside one range = %v", gaps)
	}
	if gaps := w.Gaps(5, 3, 4); !reflect.DeepEqual(gaps, [][2]int64{{3, 4}}) {
		t.Fatalf("Gaps on an unwritten partition = %v", gaps)
	}
	if next := w.Next(); !reflect.DeepEqual(next, map[int32]int64{0: 1, 1: 31}) {
		t.Fatalf("Next = %v", next)
	}
}

// TestWrittenMatchesASetUnderShuffledAcks checks the ranges against a
// plain set when acknowledgements arrive out of order.
func TestWrittenMatchesASetUnderShuffledAcks(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var w Written
		set := map[int64]bool{}
		for range rng.IntN(60) {
			o := rng.Int64N(80)
			w.Add(0, o)
			set[o] = true
		}
		var fromSet [][2]int64
		for o := int64(0); o < 80; o++ {
			if set[o] && (len(fromSet) == 0 || fromSet[len(fromSet)-1][1] != o-1) {
				fromSet = append(fromSet, [2]int64{o, o})
			} else if set[o] {
				fromSet[len(fromSet)-1][1] = o
			}
		}
		var got [][2]int64
		if len(w.parts) > 0 && w.parts[0] != nil {
			got = w.parts[0].r
			if w.parts[0].count != int64(len(set)) {
				t.Fatalf("round %d: count %d, want %d", round, w.parts[0].count, len(set))
			}
		}
		if !reflect.DeepEqual(got, fromSet) {
			t.Fatalf("round %d: ranges %v, want %v", round, got, fromSet)
		}
	}
}

func BenchmarkWrittenAddContiguous(b *testing.B) {
	var w Written
	b.ReportAllocs()
	for i := range b.N {
		w.Add(int32(i&7), int64(i>>3))
	}
}
