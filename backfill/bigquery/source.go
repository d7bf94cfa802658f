// Package bigquery reads the backfill's rows from a BigQuery query with
// the official client's iterator, through the Storage Read API by default.
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
	"cloud.google.com/go/civil"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// Config says what to query and how to read it.
type Config struct {
	Project         string // project that runs (and pays for) the query job
	BillingProject  string // quota project, if different
	Location        string
	SQL             string
	Params          []Param
	ReadAPI         string // "storage" or "rest"
	CredentialsFile string
	// Endpoint overrides the REST endpoint. An http:// endpoint (an
	// emulator) is used without authentication.
	Endpoint string
	// StorageEndpoint overrides the Storage Read API's gRPC endpoint;
	// StoragePlaintext dials it without TLS or credentials (emulators).
	StorageEndpoint  string
	StoragePlaintext bool
	QueryTimeout     time.Duration // bound on running the job before rows flow
}

// Param is a named query parameter, typed as in BigQuery.
type Param struct{ Name, Type, Value string }

// Source is a backfill.Source over one BigQuery query.
type Source struct {
	cfg Config
	log *slog.Logger
}

var _ backfill.Source = (*Source)(nil)

// New returns a source for cfg.
func New(cfg Config, log *slog.Logger) *Source {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, log: log}
}

// Open runs the query and returns a reader over its result. Running the
// job is bounded by QueryTimeout; reading the rows follows ctx.
func (s *Source) Open(ctx context.Context) (backfill.RowReader, error) {
	params, err := queryParams(s.cfg.Params)
	if err != nil {
		return nil, backfill.Errorf(backfill.KindConfig, "bigquery.params: %v", err)
	}
	client, err := bigquery.NewClient(ctx, s.cfg.Project, s.clientOptions()...)
	if err != nil {
		return nil, classify(err, "creating the BigQuery client for project "+s.cfg.Project)
	}
	if s.cfg.ReadAPI != "rest" {
		if err := client.EnableStorageReadClient(ctx, s.storageOptions()...); err != nil {
			client.Close()
			return nil, classify(err, "setting up the BigQuery Storage Read API client (set bigquery.read_api=rest to read over REST)")
		}
	}
	q := client.Query(s.cfg.SQL)
	q.Location = s.cfg.Location
	q.Parameters = params

	qctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	start := time.Now()
	job, err := q.Run(qctx)
	if err != nil {
		client.Close()
		return nil, classify(err, "starting the BigQuery query job")
	}
	s.log.Info("bigquery job started", "job_id", job.ID(), "location", job.Location(), "project", s.cfg.Project)
	status, err := job.Wait(qctx)
	if err == nil {
		err = status.Err()
	}
	if err != nil {
		client.Close()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, backfill.Errorf(backfill.KindSource, "BigQuery job %s did not finish within bigquery.query_timeout=%s", job.ID(), s.cfg.QueryTimeout)
		}
		return nil, classify(err, "BigQuery job "+job.ID())
	}
	it, err := job.Read(ctx)
	if err != nil {
		client.Close()
		return nil, classify(err, "reading the result of BigQuery job "+job.ID())
	}
	r := &reader{client: client, it: it, jobID: job.ID()}
	// The schema and row count arrive with the first page: peek one row.
	r.peekErr = it.Next(&r.peek)
	if r.peekErr != nil && r.peekErr != iterator.Done {
		client.Close()
		return nil, classify(r.peekErr, "reading the first rows of BigQuery job "+job.ID())
	}
	r.havePeek = r.peekErr == nil
	r.columns = columns(it.Schema)
	s.log.Info("bigquery result ready", "job_id", job.ID(), "read_path", r.Path(), "total_rows", it.TotalRows,
		"query_seconds", time.Since(start).Seconds(), "columns", fmt.Sprint(r.columns))
	if s.cfg.ReadAPI != "rest" && !it.IsAccelerated() {
		s.log.Warn("the BigQuery Storage Read API was requested but the client reads this result over REST paging (slower)", "job_id", job.ID())
	}
	return r, nil
}

func (s *Source) clientOptions() []option.ClientOption {
	var opts []option.ClientOption
	if s.cfg.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(s.cfg.Endpoint))
		if strings.HasPrefix(s.cfg.Endpoint, "http://") {
			opts = append(opts, option.WithoutAuthentication())
		}
	}
	if s.cfg.CredentialsFile != "" {
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, s.cfg.CredentialsFile))
	}
	if s.cfg.BillingProject != "" {
		opts = append(opts, option.WithQuotaProject(s.cfg.BillingProject))
	}
	return opts
}

func (s *Source) storageOptions() []option.ClientOption {
	if s.cfg.StorageEndpoint != "" && s.cfg.StoragePlaintext {
		conn, err := grpc.NewClient(s.cfg.StorageEndpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err == nil {
			return []option.ClientOption{option.WithGRPCConn(conn), option.WithoutAuthentication()}
		}
	}
	opts := []option.ClientOption{}
	if s.cfg.StorageEndpoint != "" {
		opts = append(opts, option.WithEndpoint(s.cfg.StorageEndpoint))
	}
	if s.cfg.CredentialsFile != "" {
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, s.cfg.CredentialsFile))
	}
	if s.cfg.BillingProject != "" {
		opts = append(opts, option.WithQuotaProject(s.cfg.BillingProject))
	}
	return opts
}

// classify turns a BigQuery error into a backfill error whose kind says
// whether retrying can help.
func classify(err error, what string) error {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		switch {
		case gerr.Code == http.StatusForbidden && transientReason(gerr):
			return backfill.Errorf(backfill.KindSource, "%s: BigQuery is rate limiting or out of quota (%v): a retry later may succeed; see the project's BigQuery quotas", what, err)
		case gerr.Code == http.StatusUnauthorized || gerr.Code == http.StatusForbidden:
			return backfill.Errorf(backfill.KindConfig, "%s: permission denied (%v): check the credentials (Workload Identity, bigquery.credentials_file) and the roles bigquery.jobUser and bigquery.dataViewer (plus bigquery.readSessionUser for the Storage Read API)", what, err)
		case gerr.Code == http.StatusBadRequest || gerr.Code == http.StatusNotFound:
			return backfill.Errorf(backfill.KindConfig, "%s: BigQuery rejected the query (%v): check bigquery.query/table, location and params", what, err)
		}
	}
	return backfill.Errorf(backfill.KindSource, "%s: %v", what, err)
}

// transientReason reports whether a BigQuery error is a rate limit or a
// quota, which BigQuery answers with 403 like a permission error
// (cloud.google.com/bigquery/docs/error-messages: rateLimitExceeded,
// quotaExceeded).
func transientReason(e *googleapi.Error) bool {
	for _, it := range e.Errors {
		switch it.Reason {
		case "rateLimitExceeded", "quotaExceeded":
			return true
		}
	}
	return false
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
			return nil, fmt.Errorf("parameter %s (%s) value %q: %v", p.Name, p.Type, p.Value, err)
		}
		out = append(out, bigquery.QueryParameter{Name: p.Name, Value: v})
	}
	return out, nil
}
