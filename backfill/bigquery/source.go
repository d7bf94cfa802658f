// Package bigquery reads the backfill's rows from a BigQuery query: it runs
// the query (or attaches to the query job a sharded run shares) with the
// official client, then reads the job's result table through the Storage
// Read API, decoding its Arrow record batches stream by stream, or, with
// read_api=rest, through the client's row iterator (jobs.getQueryResults).
package bigquery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	bqstorage "cloud.google.com/go/bigquery/storage/apiv1"
	"cloud.google.com/go/civil"
	"github.com/apache/arrow/go/v15/arrow/memory"
	gax "github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Config says what to query and how to read it.
type Config struct {
	Project        string // project that runs (and pays for) the query job
	BillingProject string // quota project, if different
	Location       string
	// Query is the SQL to run; empty runs the minimum OrderColumn per
	// KeyColumn from Table.
	Query       string
	Table       string
	OrderColumn string
	KeyColumn   string
	Params      []Param
	// ShardIndex and ShardCount select the rows whose key k has
	// |k mod ShardCount| = ShardIndex (NULL keys: shard 0).
	ShardIndex, ShardCount int
	// QueryKey, shared by the shards of one run (the Kubernetes Job's
	// uid), makes the query's job id deterministic: the first shard runs
	// the query, the others attach to it (see SQL).
	QueryKey        string
	ReadAPI         string // ReadStorage, ReadREST or ReadAuto
	CredentialsFile string
	// Endpoint overrides the REST endpoint. An http:// endpoint (an
	// emulator) is used without authentication.
	Endpoint string
	// StorageEndpoint overrides the Storage Read API's gRPC endpoint;
	// StoragePlaintext dials it without TLS or credentials (emulators).
	StorageEndpoint  string
	StoragePlaintext bool
	// DestinationTable, "project.dataset.table" or "dataset.table", names
	// the dataset and the table name's prefix of the query's result: each
	// query job writes its own table, "<table>_<job id>" (WRITE_EMPTY),
	// which expires ResultExpiration later. Empty uses the job's
	// anonymous result table.
	DestinationTable string
	// ReadStreams is the most Storage Read API streams read at once.
	ReadStreams int
	// ReadSessionTimeout bounds creating the read session, and the first
	// call to BigQuery.
	ReadSessionTimeout time.Duration
	// ReadRetryTimeout bounds how long a stream may keep failing with
	// retryable errors without delivering a row (0: DefaultReadRetryTimeout).
	ReadRetryTimeout time.Duration
	QueryTimeout     time.Duration // bound on running the job before rows flow
	// RESTPageRows is the most rows a jobs.getQueryResults page holds
	// over REST (0: DefaultRESTPageRows). Negative asks for no row limit,
	// the client library's default, where only BigQuery's 10 MB reply
	// limit bounds a page: the bench compares it, nothing else sets it.
	RESTPageRows int

	// reduce, set by OpenKeyed for a custom Query, is what the query is
	// reduced to: one row per key (KeyedSQL).
	reduce *backfill.Projection
}

// Read APIs a Config may ask for.
const (
	ReadStorage = "storage" // the Storage Read API, or a failure naming why not
	ReadREST    = "rest"    // jobs.getQueryResults pages
	ReadAuto    = "auto"    // the Storage Read API, else REST with the cause logged and reported
)

// DefaultRESTPageRows is the most rows one jobs.getQueryResults page
// holds when the job reads over REST. The client library asks for no row
// limit unless told (its RowIterator's PageInfo().MaxSize), and BigQuery
// then fills each reply up to 10 MB, which the client holds decoded twice
// over while the job reads it. 20,000 rows of the default query is under
// 1 MB of JSON; docs/performance.md measures the memory it saves.
const DefaultRESTPageRows = 20_000

// restPageRows is the page size of a REST read: RESTPageRows, 0 the
// default, negative none.
func (c Config) restPageRows() int {
	if c.RESTPageRows == 0 {
		return DefaultRESTPageRows
	}
	return c.RESTPageRows
}

// Param is a named query parameter, typed as in BigQuery.
type Param struct{ Name, Type, Value string }

// Source is a backfill.Source over one BigQuery query.
type Source struct {
	cfg   Config
	log   *slog.Logger
	alloc memory.Allocator // for decoded batches; nil: a bufferPool per read session
	// backoff, if set, replaces the pause between attempts to resume a
	// stream (tests).
	backoff *gax.Backoff
	// auth is the Google credentials of the clients, built on first use
	// and shared by the copies open makes.
	auth *googleAuth
}

var _ backfill.KeyedSource = (*Source)(nil)

// New returns a source for cfg.
func New(cfg Config, log *slog.Logger) *Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, log: log, auth: &googleAuth{}}
}

// Open runs the query as given and returns a reader over its result.
// The first call to BigQuery (probe) and creating a read session are
// bounded by ReadSessionTimeout, running the jobs by QueryTimeout;
// reading the rows follows ctx.
func (s *Source) Open(ctx context.Context) (backfill.RowReader, error) {
	return s.open(ctx, nil)
}

// OpenKeyed is Open over a result of at most one row per key. The default
// query groups by key already; its columns, typed from the source table,
// pass plan before it runs. A custom Query's columns are learnt first
// (probe: a dry run), plan names those to keep, and the query runs
// wrapped in KeyedSQL, so that BigQuery enforces one row per key.
func (s *Source) OpenKeyed(ctx context.Context, plan func([]backfill.Column) (backfill.Projection, error)) (backfill.RowReader, error) {
	return s.open(ctx, plan)
}

func (s *Source) open(ctx context.Context, plan func([]backfill.Column) (backfill.Projection, error)) (_ backfill.RowReader, err error) {
	params, err := queryParams(s.cfg.Params)
	if err != nil {
		return nil, backfill.Errorf(backfill.KindConfig, "bigquery.params: %w", err)
	}
	client, err := s.newClient(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			client.Close()
		}
	}()
	own := *s // the location resolved and the projection planned are this open's
	s = &own
	probe, err := s.probe(ctx, client, params)
	if err != nil {
		return nil, err
	}
	if cols := s.defaultColumns(probe.table); plan != nil && s.cfg.Query == "" && cols != nil {
		// The default query groups by key already; its columns are
		// checked before it runs (and is billed): a NUMERIC key, say.
		if _, err := plan(cols); err != nil {
			return nil, err
		}
	}
	if plan != nil && s.cfg.Query != "" {
		cols, err := s.columnsOf(ctx, client, params, probe)
		if err != nil {
			return nil, err
		}
		p, err := plan(cols)
		if err != nil {
			return nil, err
		}
		s.cfg.reduce = &p
		s.log.Info("bigquery.query reduced to one row per key", "projection", p.String())
	}
	start := time.Now()
	job, dst, err := s.runQuery(ctx, client, params)
	if err != nil {
		return nil, err
	}
	var fallback string
	if s.cfg.ReadAPI != ReadREST {
		r, err := s.openStorage(ctx, client, job, dst)
		if err == nil {
			s.log.Info("bigquery result ready", "job_id", job.ID(), "read_path", PathStorage, "total_rows", r.total,
				"session", r.session, "query_seconds", time.Since(start).Seconds())
			return r, nil
		}
		if s.cfg.ReadAPI != ReadAuto || ctx.Err() != nil {
			return nil, err
		}
		fallback = err.Error()
		s.log.Warn("bigquery.read_api=auto: the Storage Read API cannot read the result; reading it over REST (slower)", "job_id", job.ID(), "cause", fallback)
	}
	if s.cfg.queryOnce() {
		// The shared result holds every shard's rows, and REST cannot
		// restrict a read to some of them: run this shard's own query.
		if job, err = s.shardQuery(ctx, client, params); err != nil {
			return nil, err
		}
	}
	r, err := openREST(ctx, client, job, s.cfg.restPageRows(), fallback)
	if err != nil {
		return nil, err
	}
	s.log.Info("bigquery result ready", "job_id", job.ID(), "read_path", PathREST, "total_rows", r.it.TotalRows,
		"query_seconds", time.Since(start).Seconds(), "columns", fmt.Sprint(r.columns))
	return r, nil
}

// maxJobAttempts bounds the query jobs one run starts for its query when
// the shards share it (QueryKey): the first, then "<id>_r1", "<id>_r2",
// each after the previous failed with a retryable reason.
const maxJobAttempts = 3

// runQuery runs the query job to completion, bounded by QueryTimeout, and
// returns it with its explicit destination table, if any.
func (s *Source) runQuery(ctx context.Context, client *bigquery.Client, params []bigquery.QueryParameter) (*bigquery.Job, *bigquery.Table, error) {
	return s.runJob(ctx, client, s.cfg.jobID(), "the query", func(id string) (*bigquery.Query, *bigquery.Table, error) {
		return s.query(client, params, id)
	})
}

// runJob runs the job build returns for a job id to completion, bounded
// by QueryTimeout. With a base id (a QueryKey), the shards share it: the
// first inserts it, the others attach on 409; a job that failed with a
// retryable reason is followed by the next deterministic id, so that
// every shard (and every retried pod) moves to the same new job instead
// of attaching to the failed one.
func (s *Source) runJob(ctx context.Context, client *bigquery.Client, base, what string, build func(id string) (*bigquery.Query, *bigquery.Table, error)) (*bigquery.Job, *bigquery.Table, error) {
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		id := base
		if base != "" && attempt > 0 {
			id = fmt.Sprintf("%s_r%d", base, attempt)
		}
		q, dst, err := build(id)
		if err != nil {
			return nil, nil, err
		}
		job, err := s.startJob(qctx, client, q)
		if err != nil {
			return nil, nil, s.queryErr(ctx, err, "starting the BigQuery job of "+what)
		}
		status, err := waitJob(qctx, job)
		if err != nil {
			return nil, nil, s.queryErr(ctx, err, "waiting for BigQuery job "+job.ID()+" ("+what+")")
		}
		jerr := status.Err()
		if jerr == nil {
			if dst != nil {
				s.expire(ctx, dst)
			}
			return job, dst, nil
		}
		reason, _ := errorReason(jerr)
		switch {
		case base == "":
			return nil, nil, classify(jerr, "BigQuery job "+job.ID()+" ("+what+")")
		case retryableReason(reason) && attempt+1 < maxJobAttempts:
			s.log.Warn("bigquery: the shared job failed with a retryable reason; every shard moves to the next job id",
				"job_id", job.ID(), "of", what, "reason", reason, "next_job_id", fmt.Sprintf("%s_r%d", base, attempt+1))
		case retryableReason(reason):
			return nil, nil, classify(jerr, fmt.Sprintf("BigQuery job %s (%s), the last of the %d jobs this run may start for it (each after a retryable failure; a retried pod attaches to them again): a new Kubernetes Job, with a new bigquery.query_key, runs it afresh", job.ID(), what, maxJobAttempts))
		default:
			return nil, nil, classify(jerr, "BigQuery job "+job.ID()+" ("+what+"), shared by the shards of this run, failed for a reason that is not retryable: every shard and every retried pod attaches to it; fix the cause, then start a new Kubernetes Job (a new bigquery.query_key)")
		}
	}
}

// query returns the query job to run with job id id (empty: the client
// picks one) and its explicit destination table, if any.
func (s *Source) query(client *bigquery.Client, params []bigquery.QueryParameter, id string) (*bigquery.Query, *bigquery.Table, error) {
	q := client.Query(s.cfg.SQL())
	q.Location = s.cfg.Location
	q.Parameters = params
	q.JobID = id
	if s.cfg.DestinationTable == "" {
		return q, nil, nil
	}
	p, d, t, err := splitTable(s.cfg.DestinationTable, s.cfg.Project)
	if err != nil {
		return nil, nil, backfill.Errorf(backfill.KindConfig, "bigquery.destination_table: %w", err)
	}
	if q.JobID == "" {
		q.JobID = newJobID()
	}
	// One table per query job: no other job, of this run or another,
	// writes it, and WRITE_EMPTY refuses to add to rows already there.
	dst := client.DatasetInProject(p, d).Table(resultTable(t, q.JobID))
	q.Dst, q.WriteDisposition, q.CreateDisposition = dst, bigquery.WriteEmpty, bigquery.CreateIfNeeded
	if s.cfg.queryOnce() {
		// Each shard's read session then scans its own blocks only.
		q.Clustering = &bigquery.Clustering{Fields: []string{ShardColumn}}
	}
	return q, dst, nil
}

// startJob inserts q's job or, when another shard of this run inserted
// its id already (409), attaches to that job.
func (s *Source) startJob(ctx context.Context, client *bigquery.Client, q *bigquery.Query) (*bigquery.Job, error) {
	job, err := q.Run(ctx)
	switch {
	case err != nil && s.cfg.QueryKey != "" && q.JobID != "" && alreadyExists(err):
		job, err = client.JobFromIDLocation(ctx, q.JobID, s.cfg.Location)
		if err == nil {
			s.log.Info("bigquery job attached: another shard of this run started it", "job_id", job.ID(), "location", job.Location())
		}
	case err == nil:
		s.log.Info("bigquery job started", "job_id", job.ID(), "location", job.Location(), "project", s.cfg.Project)
	}
	return job, err
}

// waitJob polls jobs.get until the job is done and returns its status,
// whose Err is the job's failure. Job.Wait would wait through
// jobs.getQueryResults, which answers a failed job with its error and
// which the client retries on backendError and internalError until ctx
// ends: a job that failed that way would hold the shard until
// query_timeout.
func waitJob(ctx context.Context, job *bigquery.Job) (*bigquery.JobStatus, error) {
	bo := gax.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 1.5}
	for {
		st, err := job.Status(ctx)
		if err != nil {
			return nil, err
		}
		if st.Done() {
			return st, nil
		}
		if err := gax.Sleep(ctx, bo.Pause()); err != nil {
			return nil, err
		}
	}
}

// expire gives the job's result table an expiration, ResultExpiration
// from now. A failure is logged, not fatal: the rows are there to read,
// and the dataset's default expiration, if any, still applies.
func (s *Source) expire(ctx context.Context, dst *bigquery.Table) {
	at := time.Now().Add(ResultExpiration)
	if _, err := dst.Update(ctx, bigquery.TableMetadataToUpdate{ExpirationTime: at}, ""); err != nil {
		s.log.Warn("bigquery: could not set the result table's expiration; delete it after the run, or give its dataset a default table expiration",
			"table", dst.FullyQualifiedName(), "expiration", at, "error", err)
	}
}

// shardQuery runs the query read_api=rest runs for this shard, restricted
// to its rows and with no destination table, for the REST fallback of a
// shard whose run shares one query.
func (s *Source) shardQuery(ctx context.Context, client *bigquery.Client, params []bigquery.QueryParameter) (*bigquery.Job, error) {
	own := *s
	own.cfg.ReadAPI, own.cfg.DestinationTable = ReadREST, ""
	s.log.Info("bigquery REST fallback: running this shard's own query, as read_api=rest does", "shard", s.cfg.ShardIndex, "shards", s.cfg.ShardCount)
	job, _, err := own.runQuery(ctx, client, params)
	return job, err
}

// alreadyExists reports a jobs.insert refused because the job id is taken
// (HTTP 409, reason "duplicate").
func alreadyExists(err error) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == http.StatusConflict
}

// openStorage reads the job's destination table through the Storage Read
// API. The row count to expect is the table's numRows.
func (s *Source) openStorage(ctx context.Context, client *bigquery.Client, job *bigquery.Job, dst *bigquery.Table) (*streamReader, error) {
	if dst == nil {
		var err error
		if dst, err = destination(ctx, client, job); err != nil {
			return nil, err
		}
	}
	meta, err := dst.Metadata(ctx)
	if err != nil {
		return nil, classify(err, "looking up the result table "+storageTable(dst)+" of BigQuery job "+job.ID())
	}
	rc, closeRC, err := s.storageClient(ctx)
	if err != nil {
		return nil, err
	}
	table, total := storageTable(dst), meta.NumRows
	var fields []string
	if s.cfg.queryOnce() {
		for _, f := range meta.Schema {
			if f.Name != ShardColumn {
				fields = append(fields, f.Name)
			}
		}
		// A shard reads part of the table: its rows are counted in the table.
		if total, err = s.countShard(ctx, client, job, dst); err != nil {
			closeRC()
			return nil, err
		}
	}
	r, err := s.openSession(ctx, rc, table, fields, s.cfg.rowRestriction())
	if err != nil {
		closeRC()
		return nil, err
	}
	r.total, r.totalKnown = total, true
	r.closeFn = func() error { return errors.Join(closeRC(), client.Close()) }
	return r, nil
}

// countShard returns how many rows of the shared result in dst are this
// shard's, so that the shard knows how many it must read, as an unsharded
// read knows the table's numRows. The shards share one count job, grouped
// by shard (countSQL), as they share the query: its id derives from the
// query job's, the first shard runs it and the others attach. It counts
// the distinct keys too: a table that holds a key twice (written twice)
// is refused rather than read whole.
func (s *Source) countShard(ctx context.Context, client *bigquery.Client, query *bigquery.Job, dst *bigquery.Table) (uint64, error) {
	what := fmt.Sprintf("the count of each shard's rows in %s", storageTable(dst))
	base := ""
	if s.cfg.QueryKey != "" {
		base = query.ID() + "_count"
	}
	job, _, err := s.runJob(ctx, client, base, what, func(id string) (*bigquery.Query, *bigquery.Table, error) {
		q := client.Query(s.cfg.countSQL(dst.ProjectID + "." + dst.DatasetID + "." + dst.TableID))
		q.Location, q.JobID = s.cfg.Location, id
		return q, nil, nil
	})
	if err != nil {
		return 0, err
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	it, err := job.Read(qctx)
	if err != nil {
		return 0, classify(err, "reading "+what)
	}
	// shard, rows, distinct non-NULL keys, rows with a NULL key; a shard
	// without rows has no row.
	var c [3]int64
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return 0, classify(err, "reading "+what)
		}
		var v [4]int64
		for i, x := range row {
			n, ok := x.(int64)
			if !ok || n < 0 || len(row) != len(v) {
				return 0, backfill.Errorf(backfill.KindSource, "%s: got %v, not a shard and three counts (rows, keys, NULL keys)", what, row)
			}
			v[i] = n
		}
		if len(row) != len(v) {
			return 0, backfill.Errorf(backfill.KindSource, "%s: got %v, not a shard and three counts (rows, keys, NULL keys)", what, row)
		}
		if v[0] == int64(s.cfg.ShardIndex) {
			c = [3]int64{v[1], v[2], v[3]}
		}
	}
	if rows, keys, nulls := c[0], c[1], c[2]; rows != keys+nulls || nulls > 1 {
		return 0, backfill.Errorf(backfill.KindSource, "%s: the table holds %d rows of shard %d for %d distinct keys (%d NULL): some key more than once, as when two query jobs write one table; rerun the job (a new run writes a new table) and check that nothing else writes %s",
			what, rows, s.cfg.ShardIndex, keys+min(nulls, 1), nulls, storageTable(dst))
	}
	return uint64(c[0]), nil
}

// newClient creates the REST client.
func (s *Source) newClient(ctx context.Context) (*bigquery.Client, error) {
	opts, err := s.clientOptions(s.cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	client, err := bigquery.NewClient(ctx, s.cfg.Project, opts...)
	if err != nil {
		return nil, classify(err, "creating the BigQuery client for project "+s.cfg.Project)
	}
	return client, nil
}

// storageClient connects to the Storage Read API.
func (s *Source) storageClient(ctx context.Context) (*bqstorage.BigQueryReadClient, func() error, error) {
	var opts []option.ClientOption
	var conn *grpc.ClientConn
	if s.cfg.StorageEndpoint != "" && s.cfg.StoragePlaintext {
		var err error
		// The official client's receive limit (grpcRecvLimit), which the
		// client's own dial options would set on a connection it dials.
		if conn, err = grpc.NewClient(s.cfg.StorageEndpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(grpcRecvLimit))); err != nil {
			return nil, nil, backfill.Errorf(backfill.KindConfig, "bigquery.storage_endpoint %q: %w", s.cfg.StorageEndpoint, err)
		}
		opts = []option.ClientOption{option.WithGRPCConn(conn), option.WithoutAuthentication()}
	} else {
		var err error
		if opts, err = s.clientOptions(s.cfg.StorageEndpoint); err != nil {
			return nil, nil, err
		}
	}
	rc, err := bqstorage.NewBigQueryReadClient(ctx, opts...)
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, nil, backfill.Errorf(backfill.KindConfig, "creating the BigQuery Storage Read API client: %w (check the credentials, or set bigquery.read_api=rest)", err)
	}
	return rc, func() error {
		err := rc.Close()
		if conn != nil {
			err = errors.Join(err, conn.Close())
		}
		return err
	}, nil
}

// clientOptions are the options of both clients: the endpoint override
// (an http:// endpoint is an emulator, used without authentication), the
// credentials (one set for both clients: see credentials) and the quota
// project.
func (s *Source) clientOptions(endpoint string) ([]option.ClientOption, error) {
	var opts []option.ClientOption
	if endpoint != "" {
		opts = append(opts, option.WithEndpoint(endpoint))
	}
	if strings.HasPrefix(endpoint, "http://") {
		opts = append(opts, option.WithoutAuthentication())
	} else {
		creds, err := s.credentials()
		if err != nil {
			return nil, err
		}
		opts = append(opts, option.WithAuthCredentials(creds))
	}
	if s.cfg.BillingProject != "" {
		opts = append(opts, option.WithQuotaProject(s.cfg.BillingProject))
	}
	return opts, nil
}

// splitTable parses "project.dataset.table" (or "project:dataset.table")
// or "dataset.table" in project.
func splitTable(name, project string) (p, d, t string, err error) {
	parts := strings.Split(strings.Replace(name, ":", ".", 1), ".")
	switch {
	case len(parts) == 3 && parts[0] != "" && parts[1] != "" && parts[2] != "":
		return parts[0], parts[1], parts[2], nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return project, parts[0], parts[1], nil
	}
	return "", "", "", fmt.Errorf("%q is not project.dataset.table or dataset.table", name)
}

func queryParams(ps []Param) ([]bigquery.QueryParameter, error) {
	out := make([]bigquery.QueryParameter, 0, len(ps))
	for _, p := range ps {
		var v any
		var err error
		switch strings.ToUpper(p.Type) {
		case "", "STRING":
			v = p.Value
		case "INT64":
			v, err = strconv.ParseInt(p.Value, 10, 64)
		case "FLOAT64":
			v, err = strconv.ParseFloat(p.Value, 64)
		case "BOOL":
			v, err = strconv.ParseBool(p.Value)
		case "DATE":
			v, err = civil.ParseDate(p.Value)
		case "TIMESTAMP":
			v, err = time.Parse(time.RFC3339Nano, p.Value)
		default:
			err = fmt.Errorf("unknown type %s", p.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("parameter %s (%s) value %q: %w", p.Name, p.Type, p.Value, err)
		}
		out = append(out, bigquery.QueryParameter{Name: p.Name, Value: v})
	}
	return out, nil
}
