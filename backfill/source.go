package backfill

import (
	"context"
	"fmt"
)

// ColumnType is a source column's type, named as BigQuery names it.
type ColumnType string

// Column types the encoder knows how to map onto Avro.
const (
	TypeInt64   ColumnType = "INT64"
	TypeString  ColumnType = "STRING"
	TypeFloat64 ColumnType = "FLOAT64"
	TypeBool    ColumnType = "BOOL"
)

// Column describes one column of a source's result.
type Column struct {
	Name     string
	Type     ColumnType
	Repeated bool
}

// Source opens a stream of rows. Implementations never hold the whole
// result in memory.
type Source interface {
	Open(ctx context.Context) (RowReader, error)
}

// RowReader streams the rows of one result, a batch at a time, column by
// column. It is used by one goroutine.
type RowReader interface {
	// Columns returns the result's columns in row order.
	Columns() []Column
	// NextColumns replaces the contents of dst, one Vector per column
	// (reusing their storage), with the next rows, at most max of them, and
	// returns how many. It returns 0 and io.EOF after the last row; with
	// another error, n counts the rows stored before it.
	NextColumns(dst []Vector, max int) (n int, err error)
	// TotalRows returns the row count when the source knows it.
	TotalRows() (n uint64, known bool)
	// Path names how rows are read, for logs and the report
	// (for BigQuery: "storage" or "rest").
	Path() string
	// Close releases the reader.
	Close() error
}

// A FallbackReader is a RowReader that reads by a slower path than the
// one asked for; Fallback says why, for the log and the report.
type FallbackReader interface {
	RowReader
	Fallback() string
}

// Vector holds one column's values for a batch of rows: the slice that
// matches the column's type, and Null marking SQL NULLs (empty: none).
type Vector struct {
	Int64   []int64
	Float64 []float64
	String  []string
	Bool    []bool
	Null    []bool
}

// isNull reports whether row i is SQL NULL.
func (v *Vector) isNull(i int) bool { return len(v.Null) > i && v.Null[i] }

// Reset empties v, keeping its storage.
func (v *Vector) Reset() {
	v.Int64, v.Float64, v.String, v.Bool, v.Null = v.Int64[:0], v.Float64[:0], v.String[:0], v.Bool[:0], v.Null[:0]
}

// Append appends x, the next value of column c, to v: nil for SQL NULL,
// else an int64, float64, string or bool as c's type says. A value of
// another Go type is an error. A column of another type, or a repeated
// one, keeps no values (Bind refuses to map such a column), only its
// NULLs.
func (v *Vector) Append(c Column, x any) error {
	v.Null = append(v.Null, x == nil)
	if c.Repeated {
		return nil
	}
	ok := x == nil
	switch c.Type {
	case TypeInt64:
		y, isT := x.(int64)
		v.Int64, ok = append(v.Int64, y), ok || isT
	case TypeFloat64:
		y, isT := x.(float64)
		v.Float64, ok = append(v.Float64, y), ok || isT
	case TypeString:
		y, isT := x.(string)
		v.String, ok = append(v.String, y), ok || isT
	case TypeBool:
		y, isT := x.(bool)
		v.Bool, ok = append(v.Bool, y), ok || isT
	default:
		return nil
	}
	if !ok {
		return fmt.Errorf("%T value in a %s column", x, c.Type)
	}
	return nil
}

// setRow makes v a one-row column holding x, as Encode needs: an int64,
// float64, string or bool, or nil for NULL. Another type leaves the row
// without a value.
func (v *Vector) setRow(x any) {
	v.Reset()
	switch x := x.(type) {
	case nil:
		v.Null = append(v.Null, true)
	case int64:
		v.Int64 = append(v.Int64, x)
	case float64:
		v.Float64 = append(v.Float64, x)
	case string:
		v.String = append(v.String, x)
	case bool:
		v.Bool = append(v.Bool, x)
	}
}

// describe names row i's value, for errors.
func (v *Vector) describe(i int) string {
	switch {
	case i < len(v.Int64):
		return fmt.Sprintf("int64 value %d", v.Int64[i])
	case i < len(v.Float64):
		return fmt.Sprintf("float64 value %v", v.Float64[i])
	case i < len(v.String):
		return fmt.Sprintf("string value %q", v.String[i])
	case i < len(v.Bool):
		return fmt.Sprintf("bool value %v", v.Bool[i])
	}
	return "no int64, float64, string or bool value"
}
