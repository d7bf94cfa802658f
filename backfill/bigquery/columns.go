package bigquery

import (
	"context"
	"errors"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// columnsOf returns the columns of the custom query's result without
// reading it, bounded by QueryTimeout. A dry run reports them
// (statistics.query.schema) at no cost. The goccy emulator v0.6.6 answers
// a dry run without a schema (it runs the query and rolls back), so when
// the dry run reports none, the query runs with LIMIT 0 and the schema of
// its empty result is taken.
func (s *Source) columnsOf(ctx context.Context, client *bigquery.Client, params []bigquery.QueryParameter) ([]backfill.Column, error) {
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	const what = "learning the columns of bigquery.query"
	q := client.Query(s.cfg.customSQL())
	q.Location, q.Parameters, q.DryRun = s.cfg.Location, params, true
	job, err := q.Run(qctx)
	if err != nil {
		return nil, s.queryErr(ctx, err, what+" (a dry run)")
	}
	if st := job.LastStatus(); st != nil && st.Err() != nil {
		return nil, s.queryErr(ctx, st.Err(), what+" (a dry run)")
	} else if st != nil && st.Statistics != nil {
		if qs, ok := st.Statistics.Details.(*bigquery.QueryStatistics); ok && len(qs.Schema) > 0 {
			return columns(qs.Schema), nil
		}
	}
	s.log.Info("bigquery: the dry run reported no result schema; running bigquery.query with LIMIT 0 to learn its columns")
	q = client.Query("SELECT * FROM (\n" + s.cfg.customSQL() + "\n) LIMIT 0")
	q.Location, q.Parameters = s.cfg.Location, params
	if job, err = q.Run(qctx); err != nil {
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
		return backfill.Errorf(backfill.KindSource, "%s: no answer within bigquery.query_timeout=%s", what, s.cfg.QueryTimeout)
	}
	return classify(err, what)
}
