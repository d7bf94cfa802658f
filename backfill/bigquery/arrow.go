package bigquery

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// decoder holds what the streams of one read session share: the schema,
// as Arrow and as the IPC schema message's metadata.
type decoder struct {
	schema     *arrow.Schema
	schemaMeta []byte
	mem        memory.Allocator // holds the decoded batches' buffers
	// framed is set once a stream's first payload shows the framing: true
	// when each payload is a whole IPC stream (the emulator), false when it
	// is a bare record-batch message (BigQuery).
	framed, known bool
}

// newDecoder reads the read session's serialized schema: BigQuery sends
// the IPC schema message alone; the goccy emulator sends a whole IPC
// stream (schema, an empty batch, the end-of-stream marker), whose first
// message is the schema.
func newDecoder(serializedSchema []byte) (*decoder, error) {
	meta, _, err := splitMessage(serializedSchema)
	if err != nil {
		return nil, fmt.Errorf("the read session's Arrow schema: %w", err)
	}
	r, err := ipc.NewReader(bytes.NewReader(serializedSchema))
	if err != nil {
		return nil, fmt.Errorf("decoding the read session's Arrow schema: %w", err)
	}
	defer r.Release()
	return &decoder{schema: r.Schema(), schemaMeta: meta}, nil
}

// arrowColumns maps an Arrow schema onto the domain's columns. BigQuery
// sends INT64 as int64, FLOAT64 as float64, BOOL as bool and STRING as
// utf8; other types keep Arrow's name, which Bind then rejects by name.
func arrowColumns(s *arrow.Schema) []backfill.Column {
	out := make([]backfill.Column, s.NumFields())
	for i, f := range s.Fields() {
		t, ok := arrowTypes[f.Type.ID()]
		if !ok {
			t = backfill.ColumnType(f.Type.String())
		}
		out[i] = backfill.Column{Name: f.Name, Type: t, Repeated: f.Type.ID() == arrow.LIST}
	}
	return out
}

// arrowTypes are the Arrow types BigQuery sends for the SQL types the
// pipeline can carry.
var arrowTypes = map[arrow.Type]backfill.ColumnType{
	arrow.INT64: backfill.TypeInt64, arrow.STRING: backfill.TypeString,
	arrow.FLOAT64: backfill.TypeFloat64, arrow.BOOL: backfill.TypeBool,
}

// column reads one Arrow column's values into the pipeline's Vectors.
type column struct {
	arr   arrow.Array
	kind  arrow.Type
	ints  []int64
	f64   []float64
	strs  *array.String
	bools *array.Boolean
	nulls bool
}

func newColumn(a arrow.Array) column {
	c := column{arr: a, kind: a.DataType().ID(), nulls: a.NullN() > 0}
	switch v := a.(type) {
	case *array.Int64:
		c.ints = v.Int64Values()
	case *array.Float64:
		c.f64 = v.Float64Values()
	case *array.String:
		c.strs = v
	case *array.Boolean:
		c.bools = v
	}
	return c
}

// clone returns a decoder for another stream of the same session: the
// framing is learnt per stream.
func (d *decoder) clone() *decoder {
	return &decoder{schema: d.schema, schemaMeta: d.schemaMeta, mem: d.mem}
}

// copyRows replaces dst's contents with rows [i, i+n) of the column.
func (c *column) copyRows(dst *backfill.Vector, i, n int) error {
	dst.Null = dst.Null[:0]
	if c.nulls {
		for k := i; k < i+n; k++ {
			dst.Null = append(dst.Null, c.arr.IsNull(k))
		}
	}
	dst.Int64, dst.Float64, dst.String, dst.Bool = dst.Int64[:0], dst.Float64[:0], dst.String[:0], dst.Bool[:0]
	switch c.kind {
	case arrow.INT64:
		dst.Int64 = append(dst.Int64, c.ints[i:i+n]...)
	case arrow.FLOAT64:
		dst.Float64 = append(dst.Float64, c.f64[i:i+n]...)
	case arrow.STRING:
		for k := i; k < i+n; k++ {
			// Value points into the batch's buffer, which is reused once
			// the batch is released.
			dst.String = append(dst.String, strings.Clone(c.strs.Value(k)))
		}
	case arrow.BOOL:
		for k := i; k < i+n; k++ {
			dst.Bool = append(dst.Bool, c.bools.Value(k))
		}
	default:
		return fmt.Errorf("column of Arrow type %s cannot be read", c.arr.DataType())
	}
	return nil
}
