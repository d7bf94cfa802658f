package bqreadfake

import (
	"bytes"
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// eosLen is the size of an IPC stream's end-of-stream marker: the
// continuation token and a zero length.
const eosLen = 8

// schemaMessage returns the IPC schema message alone: a stream of no
// batches without its end-of-stream marker.
func schemaMessage(schema *arrow.Schema) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if len(b) < eosLen {
		return nil, fmt.Errorf("IPC stream of %d bytes has no schema", len(b))
	}
	return b[:len(b)-eosLen], nil
}

// batchMessage returns rec as one IPC record-batch message: the stream the
// IPC writer produces, less its leading schema message and its
// end-of-stream marker.
func batchMessage(rec arrow.Record, schemaMsg []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	if !bytes.HasPrefix(b, schemaMsg) || len(b) < len(schemaMsg)+eosLen {
		return nil, fmt.Errorf("IPC stream does not start with the session's schema message")
	}
	return b[len(schemaMsg) : len(b)-eosLen], nil
}

// take returns a record of rec's columns cols and rows rows. The double
// serves INT64, STRING, FLOAT64 and BOOL columns, BigQuery's Arrow types
// for those SQL types.
func take(rec arrow.Record, rows []int64, cols []int) arrow.Record {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = rec.Schema().Field(c)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i, c := range cols {
		src := rec.Column(c)
		for _, r := range rows {
			if src.IsNull(int(r)) {
				b.Field(i).AppendNull()
				continue
			}
			switch a := src.(type) {
			case *array.Int64:
				b.Field(i).(*array.Int64Builder).Append(a.Value(int(r)))
			case *array.String:
				b.Field(i).(*array.StringBuilder).Append(a.Value(int(r)))
			case *array.Float64:
				b.Field(i).(*array.Float64Builder).Append(a.Value(int(r)))
			case *array.Boolean:
				b.Field(i).(*array.BooleanBuilder).Append(a.Value(int(r)))
			default:
				panic(fmt.Sprintf("bqreadfake: column type %s is not served", src.DataType()))
			}
		}
	}
	return b.NewRecord()
}
