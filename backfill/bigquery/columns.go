package bigquery

import (
	"context"
	"errors"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// probeResult is what the first call to BigQuery learnt: the location
// of the data, and for a custom query its dry run's result schema and the
// bytes it will process.
type probeResult struct {
	location string
	schema   bigquery.Schema // a custom query's result, if the dry run reported it
	table    bigquery.Schema // the default query's source table
	bytes    int64           // a custom query's dry run: totalBytesProcessed
	dryRun   bool            // schema and bytes come from a dry run
}

// probe is the first call to BigQuery, bounded by ReadSessionTimeout so
// that an unreachable endpoint fails fast instead of at QueryTimeout:
// the source table's metadata (tables.get) for the default query, a dry
// run of a custom query (free: nothing is billed). When Location is
// unset, it is set from the answer (the table's dataset's location, the
// dry run job's), so that every job call names it: jobs.get and
// getQueryResults find a job outside the US and EU multi-regions only in
// its location.
func (s *Source) probe(ctx context.Context, client *bigquery.Client, params []bigquery.QueryParameter) (*probeResult, error) {
	start := time.Now()
	pctx, cancel := s.firstCallContext(ctx)
	defer cancel()
	var res probeResult
	if s.cfg.Query == "" {
		p, d, t, err := splitTable(s.cfg.Table, s.cfg.Project)
		if err != nil {
			return nil, backfill.Errorf(backfill.KindConfig, "bigquery.table: %w", err)
		}
		meta, err := client.DatasetInProject(p, d).Table(t).Metadata(pctx)
		if err != nil {
			return nil, s.firstCallErr(ctx, start, err, "looking up bigquery.table "+s.cfg.Table)
		}
		res.location, res.table = meta.Location, meta.Schema
	} else {
		q := client.Query(s.cfg.customSQL())
		q.Location, q.Parameters, q.DryRun = s.cfg.Location, params, true
		job, err := q.Run(pctx)
		if err == nil {
			if st := job.LastStatus(); st != nil && st.Err() != nil {
				err = st.Err()
			}
		}
		if err != nil {
			return nil, s.firstCallErr(ctx, start, err, "checking bigquery.query with a dry run")
		}
		res.location, res.dryRun = job.Location(), true
		if st := job.LastStatus(); st != nil && st.Statistics != nil {
			res.bytes = st.Statistics.TotalBytesProcessed
			if qs, ok := st.Statistics.Details.(*bigquery.QueryStatistics); ok {
				res.schema = qs.Schema
			}
		}
	}
	if s.cfg.Location == "" && res.location != "" {
		s.cfg.Location = res.location
		s.log.Info("bigquery.location unset: using the data's location", "location", res.location)
	}
	return &res, nil
}

// defaultColumns are the columns the default query returns, typed from
// the source table's schema: the key, and min_<order column>; nil when
// the table lacks either (the query's own failure names it).
func (s *Source) defaultColumns(table bigquery.Schema) []backfill.Column {
	var out []backfill.Column
	for _, want := range []struct{ col, as string }{{s.cfg.KeyColumn, s.cfg.KeyColumn}, {s.cfg.OrderColumn, "min_" + s.cfg.OrderColumn}} {
		for _, c := range columns(table) {
			if strings.EqualFold(c.Name, want.col) {
				c.Name = want.as
				out = append(out, c)
				break
			}
		}
	}
	if len(out) != 2 {
		return nil
	}
	return out
}

// firstCallContext bounds the first call to BigQuery by
// ReadSessionTimeout (unset: by QueryTimeout).
func (s *Source) firstCallContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.cfg.ReadSessionTimeout
	if d <= 0 {
		d = s.cfg.QueryTimeout
	}
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// firstCallErr classifies a failure of the first call, naming
// read_session_timeout when it cut the call.
func (s *Source) firstCallErr(ctx context.Context, start time.Time, err error, what string) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// A token endpoint that kept the call waiting, not BigQuery.
		if te, ok := s.auth.failedSince(start); ok {
			return backfill.Errorf(te.kind, "%s: %w (the first call to BigQuery is bounded by bigquery.read_session_timeout=%s)", what, te, s.cfg.ReadSessionTimeout)
		}
		endpoint := s.cfg.Endpoint
		if endpoint == "" {
			endpoint = "bigquery.googleapis.com"
		}
		return backfill.Errorf(backfill.KindSource, "%s: no answer from BigQuery at %s within bigquery.read_session_timeout=%s: check that it is reachable from the pod (egress, DNS, proxy): %w",
			what, endpoint, s.cfg.ReadSessionTimeout, err)
	}
	return classify(err, what)
}

// columnsOf returns the columns of the custom query's result without
// reading it, bounded by QueryTimeout: those the probe's dry run reported
// (statistics.query.schema). The goccy emulator v0.6.6 answers a dry run
// without a schema (it runs the query and rolls back), so when the dry
// run reports none, the query runs with LIMIT 0 and the schema of its
// empty result is taken.
func (s *Source) columnsOf(ctx context.Context, client *bigquery.Client, params []bigquery.QueryParameter, probe *probeResult) ([]backfill.Column, error) {
	if len(probe.schema) > 0 {
		return columns(probe.schema), nil
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	const what = "learning the columns of bigquery.query"
	s.log.Info("bigquery: the dry run reported no result schema; running bigquery.query with LIMIT 0 to learn its columns")
	q := client.Query("SELECT * FROM (\n" + s.cfg.customSQL() + "\n) LIMIT 0")
	q.Location, q.Parameters = s.cfg.Location, params
	job, err := q.Run(qctx)
	if err != nil {
		return nil, s.queryErr(ctx, err, what+" (a LIMIT 0 run)")
	}
	it, err := job.Read(qctx)
	if err == nil {
		var row []bigquery.Value
		if err = it.Next(&row); errors.Is(err, iterator.Done) {
			err = nil
		}
	}
	if err != nil {
		return nil, s.queryErr(ctx, err, what+" (a LIMIT 0 run, job "+job.ID()+")")
	}
	if len(it.Schema) == 0 {
		return nil, backfill.Errorf(backfill.KindSource, "%s: neither a dry run nor a LIMIT 0 run (job %s) reported its columns: check that bigquery.query is one SELECT statement", what, job.ID())
	}
	return columns(it.Schema), nil
}

// queryErr classifies a query failure, naming QueryTimeout when it cut it.
func (s *Source) queryErr(ctx context.Context, err error, what string) error {
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return backfill.Errorf(backfill.KindSource, "%s: not done within bigquery.query_timeout=%s (raise it for a long query): %w", what, s.cfg.QueryTimeout, err)
	}
	return classify(err, what)
}

var _ backfill.CheckableSource = (*Source)(nil)

// Check checks the query without running it, for `backfill check`: the
// probe (the source table's schema, or a custom query's dry run), plan
// over the result's columns as OpenKeyed binds them, then a dry run of
// the query a run would start (reduced to one row per key, sharded),
// whose totalBytesProcessed is what on-demand pricing bills. Dry runs
// are free; no job is started.
func (s *Source) Check(ctx context.Context, plan func([]backfill.Column) (backfill.Projection, error)) (*backfill.SourceCheck, error) {
	params, err := queryParams(s.cfg.Params)
	if err != nil {
		return nil, backfill.Errorf(backfill.KindConfig, "bigquery.params: %w", err)
	}
	client, err := s.newClient(ctx)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	own := *s
	s = &own
	probe, err := s.probe(ctx, client, params)
	if err != nil {
		return nil, err
	}
	cols := s.defaultColumns(probe.table)
	if s.cfg.Query != "" {
		if cols, err = s.columnsOf(ctx, client, params, probe); err != nil {
			return nil, err
		}
	}
	if cols != nil && plan != nil {
		p, err := plan(cols)
		if err != nil {
			return nil, err
		}
		if s.cfg.Query != "" {
			s.cfg.reduce = &p
		}
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	const what = "checking the query a run starts with a dry run"
	q := client.Query(s.cfg.SQL())
	q.Location, q.Parameters, q.DryRun = s.cfg.Location, params, true
	job, err := q.Run(qctx)
	if err == nil {
		if st := job.LastStatus(); st != nil && st.Err() != nil {
			err = st.Err()
		}
	}
	if err != nil {
		return nil, s.queryErr(ctx, err, what)
	}
	out := &backfill.SourceCheck{Location: s.cfg.Location}
	if st := job.LastStatus(); st != nil && st.Statistics != nil {
		out.BytesProcessed = st.Statistics.TotalBytesProcessed
		if qs, ok := st.Statistics.Details.(*bigquery.QueryStatistics); ok && len(qs.Schema) > 0 {
			cols = columns(qs.Schema)
		}
	}
	for _, c := range cols {
		if c.Name != ShardColumn {
			out.Columns = append(out.Columns, c.Name+" "+string(c.Type))
		}
	}
	return out, nil
}
