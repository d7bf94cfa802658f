package backfill

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hamba/avro/v2"
)

// magicByte starts every Confluent wire-format payload.
const magicByte = 0

// SkipReason says why a row was not produced. The empty reason means the
// row was encoded.
type SkipReason string

// Reasons a row is skipped and counted rather than produced.
const (
	SkipNullKey   SkipReason = "null_key"
	SkipNullValue SkipReason = "null_value"
	// SkipInTable: delta mode found the key in the table with the same or a smaller minimum.
	SkipInTable SkipReason = "in_table"
)

// RecordWriter encodes rows for one goroutine, reusing its buffers: the
// slices EncodeColumns and Encode return stay valid only until the next
// call.
//
// EncodeColumns is the job's hot path and allocates nothing: it appends
// the Avro binary encoding of the few primitive types NewCodec accepts
// (long, int, string, double, float, boolean, each optionally in a union
// with null) straight into reused buffers, byte for byte what hamba/avro
// writes for the same schemas (the tests compare the two).
type RecordWriter struct {
	enc    *Encoder
	key    []byte
	value  []byte
	branch []int    // per value field: the union branch to write first, or -1 for a bare primitive
	row    []Vector // Encode's row as a one-row batch
}

// NewWriter returns a RecordWriter for one goroutine.
func (e *Encoder) NewWriter() *RecordWriter {
	w := &RecordWriter{
		enc:    e,
		key:    make([]byte, 0, 16),
		value:  make([]byte, 0, 64),
		branch: make([]int, len(e.fields)),
	}
	for i, f := range e.fields {
		w.branch[i] = -1
		if u, ok := f.schema.(*avro.UnionSchema); ok && f.nullable {
			_, w.branch[i] = u.Indices()
		}
	}
	return w
}

// Encode returns the wire-format key and value for one row of values
// (int64, float64, string, bool or nil for NULL), with EncodeColumns'
// skips and errors: it encodes the row as a one-row batch. It is a
// convenience for tests and tools; the pipeline calls EncodeColumns.
func (w *RecordWriter) Encode(row []any) (key, value []byte, skip SkipReason, err error) {
	if len(w.row) < len(row) {
		w.row = make([]Vector, len(row))
	}
	cols := w.row[:len(row)]
	for c, x := range row {
		cols[c].setRow(x)
	}
	return w.EncodeColumns(cols, 0)
}

// appendHeader appends the wire-format header: the magic byte and the
// schema id, big-endian.
func appendHeader(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, magicByte), uint32(id))
}

// appendLong appends an Avro long or int: a zig-zag varint.
func appendLong(dst []byte, x int64) []byte {
	return binary.AppendUvarint(dst, uint64(x<<1)^uint64(x>>63))
}

// EncodeColumns returns the wire-format key and value for row i of a
// batch as RowReader.NextColumns fills it. A row with a NULL key or a NULL
// mapped value column returns a skip reason and no bytes. A value missing
// from the vector of its column's type (a mistyped value) is an error.
func (w *RecordWriter) EncodeColumns(cols []Vector, i int) (key, value []byte, skip SkipReason, err error) {
	e := w.enc
	if len(cols) <= e.keyCol {
		return nil, nil, "", fmt.Errorf("the source has %d columns, the key column is number %d", len(cols), e.keyCol+1)
	}
	kv := &cols[e.keyCol]
	if kv.isNull(i) {
		return nil, nil, SkipNullKey, nil
	}
	for j := range e.fields {
		if f := &e.fields[j]; f.col >= len(cols) || cols[f.col].isNull(i) {
			return nil, nil, SkipNullValue, nil
		}
	}

	kb, err := appendVector(appendHeader(w.key[:0], e.codec.schemas.Key.ID), e.codec.keyType, kv, i)
	if err != nil {
		return nil, nil, "", fmt.Errorf("key column %q: %w", e.keyColumn, err)
	}
	w.key = kb

	vb := appendHeader(w.value[:0], e.codec.schemas.Value.ID)
	for j := range e.fields {
		f := &e.fields[j]
		if b := w.branch[j]; b >= 0 {
			vb = appendLong(vb, int64(b))
		}
		if vb, err = appendVector(vb, f.typ, &cols[f.col], i); err != nil {
			w.value = vb[:0]
			return nil, nil, "", fmt.Errorf("column %q for field %s: %w", f.column, f.name, err)
		}
	}
	w.value = vb
	return w.key, w.value, "", nil
}

// appendVector appends the Avro binary encoding as t of row i of a
// column.
func appendVector(dst []byte, t avro.Type, v *Vector, i int) ([]byte, error) {
	switch {
	case t == avro.Long && i < len(v.Int64):
		return appendLong(dst, v.Int64[i]), nil
	case t == avro.Int && i < len(v.Int64):
		if x := v.Int64[i]; x < math.MinInt32 || x > math.MaxInt32 {
			return dst, fmt.Errorf("value %d does not fit Avro int", x)
		}
		return appendLong(dst, v.Int64[i]), nil
	case t == avro.String && i < len(v.String):
		x := v.String[i]
		return append(appendLong(dst, int64(len(x))), x...), nil
	case t == avro.Double && i < len(v.Float64):
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Float64[i])), nil
	case t == avro.Float && i < len(v.Float64):
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(v.Float64[i]))), nil
	case t == avro.Boolean && i < len(v.Bool):
		if v.Bool[i] {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	}
	return dst, fmt.Errorf("got %s, want a value for Avro %s", v.describe(i), t)
}
