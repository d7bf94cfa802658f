package backfill

import "testing"

// The encoder's cost per record, for the pipeline's path (EncodeColumns,
// over the batches the readers fill) and for the one-row convenience
// (Encode, which tests and tools call): go test -run='^$' -bench=Encode ./backfill/
func BenchmarkEncode(b *testing.B) {
	e := mustEncoder(b, ksqlSchemas(1, 2), Mapping{KeyColumn: "user_id"}, orderColumns)
	row := []any{int64(123456), int64(987654321)}
	b.Run("row", func(b *testing.B) {
		w := e.NewWriter()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := w.Encode(row); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("columns", func(b *testing.B) {
		w := e.NewWriter()
		cols := []Vector{{Int64: []int64{123456}}, {Int64: []int64{987654321}}}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := w.EncodeColumns(cols, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}
