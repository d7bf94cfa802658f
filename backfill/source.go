package backfill

import "context"

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

// RowReader streams the rows of one result. It is used by one goroutine.
type RowReader interface {
	// Columns returns the result's columns in row order.
	Columns() []Column
	// Next stores the next row into *row, reusing its storage where it can.
	// Values are int64, string, float64, bool or nil (SQL NULL).
	// It returns io.EOF after the last row.
	Next(row *[]any) error
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
