package backfill

import (
	"context"
	"fmt"

	"github.com/hamba/avro/v2"
)

// Projection is what the pipeline reads of a query's rows, for a source
// that reduces its result to one row per key.
type Projection struct {
	Key string // the key column
	// Min is the column of the observed value field (the first, a long):
	// the source keeps each key's minimum of it.
	Min string
	// Carry are the columns of the other value fields, taken from the row
	// holding the minimum.
	Carry []string
}

// A KeyedSource is a Source whose result holds at most one row per key
// by construction: it reduces its query's rows to each key's minimum
// before anything reads them.
type KeyedSource interface {
	Source
	// OpenKeyed is Open over the reduced result. When the source needs to
	// know what to keep, it calls plan with its query's columns before
	// running it; an error from plan ends OpenKeyed with that error.
	OpenKeyed(ctx context.Context, plan func([]Column) (Projection, error)) (RowReader, error)
}

// open opens the source, reduced to one row per key when it can be.
func (p *Pipeline) open(ctx context.Context) (RowReader, error) {
	if ks, ok := p.Source.(KeyedSource); ok {
		return ks.OpenKeyed(ctx, p.plan)
	}
	return p.Source.Open(ctx)
}

// plan binds the query's columns to the schemas and the mapping, as the
// rows will be bound, and names the columns to keep: the key, the
// observed field's (whose minimum is kept) and the other fields'.
func (p *Pipeline) plan(cols []Column) (Projection, error) {
	enc, err := p.Codec.Bind(p.Mapping, cols)
	if err != nil {
		return Projection{}, err
	}
	if len(enc.fields) == 0 {
		return Projection{}, Errorf(KindContract, "the value schema of subject %q has no field: there is no minimum to keep per key", p.Codec.schemas.Value.Subject)
	}
	first := enc.fields[0]
	if first.typ != avro.Long && first.typ != avro.Int {
		return Projection{}, Errorf(KindContract, "the job keeps each key's minimum of the value schema's first field, %s, but it is %s, not a long or int: put the order id first in the value schema",
			first.name, first.typ)
	}
	proj := Projection{Key: enc.keyColumn, Min: first.column}
	for _, f := range enc.fields[1:] {
		proj.Carry = append(proj.Carry, f.column)
	}
	return proj, nil
}

// String describes the projection for logs.
func (p Projection) String() string {
	return fmt.Sprintf("key %s, MIN(%s), from its row %v", p.Key, p.Min, p.Carry)
}

// SourceCheck is what checking a source's query without running it
// learnt: `backfill check` reports it.
type SourceCheck struct {
	// Location is where the query runs.
	Location string `json:"location,omitempty"`
	// Columns are the result's columns, "name TYPE", as the mapping bound
	// them.
	Columns []string `json:"columns"`
	// BytesProcessed is the dry run's estimate of the bytes the query job
	// processes: what on-demand pricing bills (at least 10 MB per table
	// the query references). A sharded run's count adds a scan of the
	// result's shard and key columns.
	BytesProcessed int64 `json:"bytes_processed"`
}

// A CheckableSource checks its query without running it (a dry run): the
// result's columns through plan, as OpenKeyed binds them, and what the
// query will cost.
type CheckableSource interface {
	Check(ctx context.Context, plan func([]Column) (Projection, error)) (*SourceCheck, error)
}

// CheckSource checks the source's query as a run would bind its result,
// without running it; nil when the source cannot check.
func (p *Pipeline) CheckSource(ctx context.Context) (*SourceCheck, error) {
	cs, ok := p.Source.(CheckableSource)
	if !ok {
		return nil, nil
	}
	return cs.Check(ctx, p.plan)
}
