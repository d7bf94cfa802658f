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
)

// RecordWriter encodes rows for one goroutine, reusing its buffers: the
// slices Encode returns stay valid only until the next call.
type RecordWriter struct {
	enc    *Encoder
	key    *avro.Writer
	value  *avro.Writer
	header [5]byte
}

// NewWriter returns a RecordWriter for one goroutine.
func (e *Encoder) NewWriter() *RecordWriter {
	return &RecordWriter{
		enc:   e,
		key:   avro.NewWriter(nil, 16),
		value: avro.NewWriter(nil, 64),
	}
}

// Encode returns the wire-format key and value for row. A row with a NULL
// key or a NULL mapped value column returns a skip reason and no bytes.
// A value whose Go type does not match its column's type is an error.
func (w *RecordWriter) Encode(row []any) (key, value []byte, skip SkipReason, err error) {
	e := w.enc
	if len(row) <= e.keyCol {
		return nil, nil, "", fmt.Errorf("row has %d columns, the key column is number %d", len(row), e.keyCol+1)
	}
	k := row[e.keyCol]
	if k == nil {
		return nil, nil, SkipNullKey, nil
	}
	for i := range e.fields {
		if f := &e.fields[i]; f.col >= len(row) || row[f.col] == nil {
			return nil, nil, SkipNullValue, nil
		}
	}

	w.key.Reset(nil)
	w.writeHeader(w.key, e.codec.schemas.Key.ID)
	kv, err := nativeValue(e.codec.keyType, k)
	if err != nil {
		return nil, nil, "", fmt.Errorf("key column %q: %w", e.keyColumn, err)
	}
	w.key.WriteVal(e.codec.key, kv)
	if w.key.Error != nil {
		return nil, nil, "", fmt.Errorf("encoding key %v: %w", k, w.key.Error)
	}

	w.value.Reset(nil)
	w.writeHeader(w.value, e.codec.schemas.Value.ID)
	for i := range e.fields {
		f := &e.fields[i]
		v, err := nativeValue(f.typ, row[f.col])
		if err != nil {
			return nil, nil, "", fmt.Errorf("column %q for field %s: %w", f.column, f.name, err)
		}
		w.value.WriteVal(f.schema, v)
	}
	if w.value.Error != nil {
		return nil, nil, "", fmt.Errorf("encoding value for key %v: %w", k, w.value.Error)
	}
	return w.key.Buffer(), w.value.Buffer(), "", nil
}

func (w *RecordWriter) writeHeader(out *avro.Writer, id int) {
	w.header[0] = magicByte
	binary.BigEndian.PutUint32(w.header[1:], uint32(id))
	_, _ = out.Write(w.header[:])
}

// nativeValue converts a source value to the Go type hamba/avro encodes
// as t.
func nativeValue(t avro.Type, v any) (any, error) {
	switch t {
	case avro.Long:
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case avro.Int:
		if x, ok := v.(int64); ok {
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, fmt.Errorf("value %d does not fit Avro int", x)
			}
			return int32(x), nil
		}
	case avro.String:
		if x, ok := v.(string); ok {
			return x, nil
		}
	case avro.Double:
		if x, ok := v.(float64); ok {
			return x, nil
		}
	case avro.Float:
		if x, ok := v.(float64); ok {
			return float32(x), nil
		}
	case avro.Boolean:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	}
	return nil, fmt.Errorf("got %T value %v, want a value for Avro %s", v, v, t)
}
