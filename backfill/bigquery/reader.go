package bigquery

import (
	"io"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// reader is a backfill.RowReader over a BigQuery RowIterator.
type reader struct {
	client   *bigquery.Client
	it       *bigquery.RowIterator
	jobID    string
	columns  []backfill.Column
	peek     rowLoader
	peekErr  error
	havePeek bool
}

// rowLoader keeps the iterator's values without converting them.
type rowLoader []bigquery.Value

// Load implements bigquery.ValueLoader.
func (l *rowLoader) Load(v []bigquery.Value, _ bigquery.Schema) error {
	*l = v
	return nil
}

func (r *reader) Columns() []backfill.Column { return r.columns }

func (r *reader) Next(row *[]any) error {
	var vals rowLoader
	if r.havePeek {
		vals, r.havePeek = r.peek, false
	} else if r.peekErr == iterator.Done {
		return io.EOF
	} else if err := r.it.Next(&vals); err != nil {
		if err == iterator.Done {
			return io.EOF
		}
		return classify(err, "reading BigQuery job "+r.jobID)
	}
	dst := (*row)[:0]
	for _, v := range vals {
		dst = append(dst, v)
	}
	*row = dst
	return nil
}

func (r *reader) TotalRows() (uint64, bool) {
	return r.it.TotalRows, r.it.TotalRows > 0 || r.peekErr == iterator.Done
}

func (r *reader) Path() string {
	if r.it.IsAccelerated() {
		return "storage-read-api"
	}
	return "rest"
}

func (r *reader) Close() error { return r.client.Close() }

// columns maps BigQuery's schema onto the domain's column types.
func columns(s bigquery.Schema) []backfill.Column {
	out := make([]backfill.Column, len(s))
	for i, f := range s {
		t := backfill.ColumnType(f.Type)
		switch f.Type {
		case bigquery.IntegerFieldType:
			t = backfill.TypeInt64
		case bigquery.StringFieldType:
			t = backfill.TypeString
		case bigquery.FloatFieldType:
			t = backfill.TypeFloat64
		case bigquery.BooleanFieldType:
			t = backfill.TypeBool
		}
		out[i] = backfill.Column{Name: f.Name, Type: t, Repeated: f.Repeated}
	}
	return out
}
