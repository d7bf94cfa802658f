package bigquery

import (
	"context"
	"io"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// restReader is a backfill.RowReader over the client's RowIterator,
// which pages through jobs.getQueryResults. The client's own Storage
// Read API path is never enabled, so it reads over REST and nothing else.
type restReader struct {
	client   *bigquery.Client
	it       *bigquery.RowIterator
	jobID    string
	columns  []backfill.Column
	peek     rowLoader
	peekErr  error
	havePeek bool
	fallback string // why the Storage Read API was not used (read_api=auto)
}

// openREST returns a reader over the job's result in pages of at most
// pageRows rows (negative: no row limit; see Config.RESTPageRows). The
// schema and row count arrive with the first page, so it reads one row
// ahead.
func openREST(ctx context.Context, client *bigquery.Client, job *bigquery.Job, pageRows int, fallback string) (*restReader, error) {
	it, err := job.Read(ctx)
	if err != nil {
		return nil, classify(err, "reading the result of BigQuery job "+job.ID())
	}
	// The client sends PageInfo().MaxSize as each getQueryResults call's
	// maxResults, and none when it is 0: BigQuery then fills each reply
	// up to 10 MB (cloud.google.com/go/bigquery v1.86.2, iterator.go
	// fetchJobResultPage; google.golang.org/api/iterator PageInfo.next).
	// The iterator holds one page at a time.
	it.PageInfo().MaxSize = max(pageRows, 0)
	r := &restReader{client: client, it: it, jobID: job.ID(), fallback: fallback}
	r.peekErr = it.Next(&r.peek)
	if r.peekErr != nil && r.peekErr != iterator.Done {
		return nil, classify(r.peekErr, "reading the first rows of BigQuery job "+job.ID())
	}
	r.havePeek = r.peekErr == nil
	r.columns = columns(it.Schema)
	return r, nil
}

// rowLoader keeps the iterator's values without converting them.
type rowLoader []bigquery.Value

// Load implements bigquery.ValueLoader.
func (l *rowLoader) Load(v []bigquery.Value, _ bigquery.Schema) error {
	*l = v
	return nil
}

func (r *restReader) Columns() []backfill.Column { return r.columns }

// next returns the next row's values, io.EOF after the last.
func (r *restReader) next() (rowLoader, error) {
	var vals rowLoader
	if r.havePeek {
		vals, r.havePeek = r.peek, false
	} else if r.peekErr == iterator.Done {
		return nil, io.EOF
	} else if err := r.it.Next(&vals); err != nil {
		if err == iterator.Done {
			return nil, io.EOF
		}
		return nil, classify(err, "reading BigQuery job "+r.jobID)
	}
	return vals, nil
}

// NextColumns implements backfill.RowReader: it lays up to max rows
// out column by column, as the Storage Read API reader does, reading
// further pages as needed. A value whose Go type does not match its
// column's type (the client converts each by the result's schema) is a
// contract error.
func (r *restReader) NextColumns(dst []backfill.Vector, max int) (int, error) {
	for j := range dst {
		dst[j].Reset()
	}
	n := 0
	for n < max {
		vals, err := r.next()
		if err != nil {
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		if len(vals) != len(r.columns) {
			return n, backfill.Errorf(backfill.KindContract, "BigQuery job %s: a row of %d values for %d columns", r.jobID, len(vals), len(r.columns))
		}
		for j, c := range r.columns {
			if err := dst[j].Append(c, vals[j]); err != nil {
				return n, backfill.Errorf(backfill.KindContract, "column %s: %w", c.Name, err)
			}
		}
		n++
	}
	return n, nil
}

func (r *restReader) TotalRows() (uint64, bool) {
	return r.it.TotalRows, r.it.TotalRows > 0 || r.peekErr == iterator.Done
}

func (r *restReader) Path() string { return PathREST }

// Fallback says why the Storage Read API was not used, when it was asked
// for with read_api=auto.
func (r *restReader) Fallback() string { return r.fallback }

func (r *restReader) Close() error { return r.client.Close() }

// restTypes are the BigQuery types the pipeline can carry, as the REST
// API names them.
var restTypes = map[bigquery.FieldType]backfill.ColumnType{
	bigquery.IntegerFieldType: backfill.TypeInt64, bigquery.StringFieldType: backfill.TypeString,
	bigquery.FloatFieldType: backfill.TypeFloat64, bigquery.BooleanFieldType: backfill.TypeBool,
}

// columns maps BigQuery's schema onto the domain's columns; other types
// keep BigQuery's name, which Bind then rejects by name.
func columns(s bigquery.Schema) []backfill.Column {
	out := make([]backfill.Column, len(s))
	for i, f := range s {
		t, ok := restTypes[f.Type]
		if !ok {
			t = backfill.ColumnType(f.Type)
		}
		out[i] = backfill.Column{Name: f.Name, Type: t, Repeated: f.Repeated}
	}
	return out
}
