package bigquery

import (
	"context"
	"errors"
	"fmt"

	"cloud.google.com/go/bigquery"
	bqstorage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/bigquery/storage/apiv1/storagepb"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Read paths, as RowReader.Path and the report's source_path name them.
const (
	PathStorage = "storage" // the Storage Read API, decoded here from Arrow
	PathREST    = "rest"    // jobs.getQueryResults pages through the client's RowIterator
)

// storageTable names a table for the Storage Read API.
func storageTable(t *bigquery.Table) string {
	return fmt.Sprintf("projects/%s/datasets/%s/tables/%s", t.ProjectID, t.DatasetID, t.TableID)
}

// destination returns the table a finished query job wrote: the explicit
// destination, or the job's anonymous result table, which jobs.get reports
// as configuration.query.destinationTable (the official client reads it
// the same way: v1.86.2 storage_iterator.go newStorageRowIteratorFromJob).
func destination(ctx context.Context, client *bigquery.Client, job *bigquery.Job) (*bigquery.Table, error) {
	j, err := client.JobFromIDLocation(ctx, job.ID(), job.Location())
	if err != nil {
		return nil, classify(err, "looking up BigQuery job "+job.ID())
	}
	cfg, err := j.Config()
	if err != nil {
		return nil, backfill.Errorf(backfill.KindSource, "reading the configuration of BigQuery job %s: %w", job.ID(), err)
	}
	q, ok := cfg.(*bigquery.QueryConfig)
	if !ok || q.Dst == nil {
		return nil, backfill.Errorf(backfill.KindConfig, "BigQuery job %s has no destination table to read through the Storage Read API (a multi-statement script?): set bigquery.destination_table, or bigquery.read_api=rest", job.ID())
	}
	return q.Dst, nil
}

// openSession creates a read session over table, bounded by
// ReadSessionTimeout, and starts reading its streams. The official client
// would wait up to 600 s (its default CreateReadSession timeout, retrying
// Unavailable) and then fall back to REST without saying why; here the
// failure is returned, named.
func (s *Source) openSession(ctx context.Context, rc *bqstorage.BigQueryReadClient, table string, fields []string, restriction string) (*streamReader, error) {
	sctx, cancel := context.WithTimeout(ctx, s.cfg.ReadSessionTimeout)
	defer cancel()
	req := &storagepb.CreateReadSessionRequest{
		Parent: "projects/" + s.billingProject(),
		ReadSession: &storagepb.ReadSession{
			Table:      table,
			DataFormat: storagepb.DataFormat_ARROW,
			// Always set: the goccy emulator dereferences it.
			ReadOptions: &storagepb.ReadSession_TableReadOptions{SelectedFields: fields, RowRestriction: restriction},
		},
		MaxStreamCount: int32(s.cfg.ReadStreams),
	}
	sess, err := rc.CreateReadSession(sctx, req, gax.WithTimeout(s.cfg.ReadSessionTimeout))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
			if ctx.Err() == nil {
				return nil, backfill.Errorf(backfill.KindSource, "creating a Storage Read API session on %s: no answer within bigquery.read_session_timeout=%s: check that %s is reachable from the pod, or set bigquery.read_api=rest",
					table, s.cfg.ReadSessionTimeout, s.storageEndpoint())
			}
		}
		return nil, classifyRPC(err, "creating a Storage Read API session on "+table)
	}
	dec, err := newDecoder(sess.GetArrowSchema().GetSerializedSchema())
	if err != nil {
		return nil, backfill.Errorf(backfill.KindSource, "read session %s: %w", sess.GetName(), err)
	}
	dec.mem = s.alloc
	if dec.mem == nil {
		dec.mem = &bufferPool{}
	}
	return readStreams(ctx, rc, sess, dec, s.streamRetry(), s.log), nil
}

// streamRetry is how the session's streams are resumed: under
// ReadRetryTimeout, with the official client's backoff (capped at 30 s).
func (s *Source) streamRetry() streamRetry {
	r := streamRetry{budget: s.cfg.ReadRetryTimeout, backoff: defaultStreamBackoff}
	if r.budget <= 0 {
		r.budget = DefaultReadRetryTimeout
	}
	if s.backoff != nil {
		r.backoff = *s.backoff
	}
	return r
}

func (s *Source) billingProject() string {
	if s.cfg.BillingProject != "" {
		return s.cfg.BillingProject
	}
	return s.cfg.Project
}

func (s *Source) storageEndpoint() string {
	if s.cfg.StorageEndpoint != "" {
		return s.cfg.StorageEndpoint
	}
	return "bigquerystorage.googleapis.com:443"
}
