package bigquery

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	bq "google.golang.org/api/bigquery/v2"
)

// jobsDouble serves the few BigQuery REST v2 methods a query-once run
// calls: jobs.insert, jobs.getQueryResults, jobs.get and tables.get. Like
// BigQuery, it refuses a second jobs.insert with a job id already taken
// with 409 and reason "duplicate" (REST reference, jobs.insert: "If the
// job ID already exists, the request fails"; error reason duplicate,
// cloud.google.com/bigquery/docs/error-messages). The goccy emulator
// v0.6.6 answers that insert with a 500 after running the query again
// (server/handler.go jobsInsertHandler, internal/metadata/project.go
// AddJob), so the attach logic is tested here.
type jobsDouble struct {
	dst    *bq.TableReference
	rows   uint64
	schema *bq.TableSchema

	mu      sync.Mutex
	jobs    map[string]*bq.Job
	inserts int // jobs.insert calls that created a job (each runs, and bills, the query)
}

func newJobsDouble(t testing.TB, dst *bq.TableReference, rows uint64, schema *bq.TableSchema) (*jobsDouble, string) {
	d := &jobsDouble{dst: dst, rows: rows, schema: schema, jobs: map[string]*bq.Job{}}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return d, srv.URL
}

// created returns how many query jobs were created.
func (d *jobsDouble) created() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inserts
}

func (d *jobsDouble) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	_, rest, _ := strings.Cut(path, "/projects/")
	parts := strings.Split(rest, "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 2 && parts[1] == "jobs":
		var job bq.Job
		if err := json.NewDecoder(r.Body).Decode(&job); err != nil {
			d.fail(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
		d.insert(w, &job)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[1] == "queries":
		d.reply(w, &bq.GetQueryResultsResponse{JobComplete: true, JobReference: d.job(parts[2]).JobReference, TotalRows: d.rows, Schema: d.schema})
	case r.Method == http.MethodGet && len(parts) == 3 && parts[1] == "jobs":
		d.reply(w, d.job(parts[2]))
	case r.Method == http.MethodGet && len(parts) == 5 && parts[1] == "datasets" && parts[3] == "tables":
		d.reply(w, &bq.Table{TableReference: d.dst, NumRows: d.rows, Schema: d.schema})
	default:
		d.fail(w, http.StatusNotFound, "notFound", r.Method+" "+path)
	}
}

func (d *jobsDouble) insert(w http.ResponseWriter, job *bq.Job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := job.JobReference.JobId
	if _, taken := d.jobs[id]; taken {
		d.fail(w, http.StatusConflict, "duplicate", fmt.Sprintf("Already Exists: Job %s:US.%s", job.JobReference.ProjectId, id))
		return
	}
	job.JobReference.Location = "US"
	job.Status = &bq.JobStatus{State: "DONE"}
	if job.Configuration.Query.DestinationTable == nil {
		job.Configuration.Query.DestinationTable = d.dst // the anonymous result table
	}
	d.jobs[id] = job
	d.inserts++
	d.reply(w, job)
}

func (d *jobsDouble) job(id string) *bq.Job {
	d.mu.Lock()
	defer d.mu.Unlock()
	if j := d.jobs[id]; j != nil {
		return j
	}
	return &bq.Job{JobReference: &bq.JobReference{JobId: id}}
}

func (d *jobsDouble) reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v) //nolint:errcheck
}

func (d *jobsDouble) fail(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{ //nolint:errcheck
		"code": code, "message": msg, "errors": []map[string]string{{"reason": reason, "message": msg}},
	}})
}
