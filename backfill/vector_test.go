package backfill_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// TestVectorAppend: each supported type lands in its slice with NULLs
// marked, a value of the wrong Go type is an error naming both types, and
// a repeated or unsupported column keeps only its NULL marks.
func TestVectorAppend(t *testing.T) {
	t.Parallel()
	cases := []struct {
		col  backfill.Column
		vals []any
		want backfill.Vector
	}{
		{backfill.Column{Name: "i", Type: backfill.TypeInt64}, []any{int64(1), nil, int64(-3)},
			backfill.Vector{Int64: []int64{1, 0, -3}, Null: []bool{false, true, false}}},
		{backfill.Column{Name: "f", Type: backfill.TypeFloat64}, []any{1.5, nil},
			backfill.Vector{Float64: []float64{1.5, 0}, Null: []bool{false, true}}},
		{backfill.Column{Name: "s", Type: backfill.TypeString}, []any{nil, "x"},
			backfill.Vector{String: []string{"", "x"}, Null: []bool{true, false}}},
		{backfill.Column{Name: "b", Type: backfill.TypeBool}, []any{true, false, nil},
			backfill.Vector{Bool: []bool{true, false, false}, Null: []bool{false, false, true}}},
		{backfill.Column{Name: "r", Type: backfill.TypeInt64, Repeated: true}, []any{[]int64{1}, nil},
			backfill.Vector{Null: []bool{false, true}}},
		{backfill.Column{Name: "n", Type: "NUMERIC"}, []any{"1.5", nil},
			backfill.Vector{Null: []bool{false, true}}},
	}
	for _, tc := range cases {
		var v backfill.Vector
		for _, x := range tc.vals {
			if err := v.Append(tc.col, x); err != nil {
				t.Fatalf("column %s: Append(%v): %v", tc.col.Name, x, err)
			}
		}
		if !reflect.DeepEqual(v, tc.want) {
			t.Errorf("column %s: got %+v, want %+v", tc.col.Name, v, tc.want)
		}
	}

	var v backfill.Vector
	err := v.Append(backfill.Column{Name: "i", Type: backfill.TypeInt64}, "12")
	if err == nil || !strings.Contains(err.Error(), "string value in a INT64 column") {
		t.Fatalf("a string in an INT64 column: %v", err)
	}
}

// TestVectorResetKeepsStorage: Reset empties every slice without giving
// up its storage, so that a reused batch allocates nothing.
func TestVectorResetKeepsStorage(t *testing.T) {
	col := backfill.Column{Name: "i", Type: backfill.TypeInt64}
	var v backfill.Vector
	for i := range 100 {
		if err := v.Append(col, int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	v.Reset()
	if len(v.Int64) != 0 || len(v.Null) != 0 || cap(v.Int64) < 100 || cap(v.Null) < 100 {
		t.Fatalf("after Reset: len %d/%d, cap %d/%d", len(v.Int64), len(v.Null), cap(v.Int64), cap(v.Null))
	}
	allocs := testing.AllocsPerRun(10, func() {
		v.Reset()
		for i := range 100 {
			_ = v.Append(col, int64(i))
		}
	})
	// Values below 256 box into any without allocating: what allocates is the vector.
	if allocs != 0 {
		t.Fatalf("refilling a reset vector: cap %d, %v allocations per run", cap(v.Int64), allocs)
	}
}
