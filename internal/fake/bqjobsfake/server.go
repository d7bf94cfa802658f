// Package bqjobsfake is an in-process double of the few BigQuery REST v2
// methods a run reads through the Storage Read API calls: jobs.insert
// (dry runs too), jobs.getQueryResults, jobs.get, datasets.get, tables.get
// and tables.patch. It runs no SQL: every
// query job "writes" the one result table it is given, whose rows a
// bqreadfake server serves (and getQueryResults, when Row is set), unless
// Answer gives the query's rows, which getQueryResults then returns.
//
// getQueryResults pages as BigQuery documents it: at most maxResults rows
// per reply, and replies limited to 10 MB whatever maxResults says (by
// default there is no row limit and only the byte limit applies);
// pageToken, non-empty while rows remain, asks for the next page, and
// startIndex for the rows from an index on. See the REST reference,
// https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/getQueryResults
// (query parameters maxResults, pageToken, startIndex; response fields
// rows, "as many results as can be contained within the maximum permitted
// reply size", and pageToken, "when this token is non-empty, it indicates
// additional results are available") and jobs.query's maxResults for the
// 10 MB limit, https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query
// (tabledata.list pages the same way:
// https://cloud.google.com/bigquery/docs/reference/rest/v2/tabledata/list).
// The client library (cloud.google.com/go/bigquery v1.86.2, iterator.go
// fetchJobResultPage) sends maxResults only when the RowIterator's
// PageInfo().MaxSize is set, and job.go waitForQuery asks with
// maxResults=0 only to wait for the job, reading no rows.
//
// Like BigQuery, it refuses a second jobs.insert with a job id already
// taken with 409 and reason "duplicate" (REST reference, jobs.insert;
// cloud.google.com/bigquery/docs/error-messages, reason duplicate). The
// goccy emulator v0.6.6 answers that insert with a 500 after running the
// query again (server/handler.go jobsInsertHandler, and
// internal/metadata/project.go AddJob), so tests of the attach logic use
// this double.
package bqjobsfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	bq "google.golang.org/api/bigquery/v2"
)

// Server is a running double.
type Server struct {
	dst    *bq.TableReference
	rows   uint64
	schema *bq.TableSchema
	srv    *http.Server
	lis    net.Listener

	// Answer, if set before the first query, returns the rows of a query
	// the double answers itself over REST (ok false: the query writes the
	// result table).
	Answer func(sql string) (schema *bq.TableSchema, rows []*bq.TableRow, ok bool)
	// Row, if set before the first query, returns row i (0 <= i < rows)
	// of the result table, which getQueryResults then pages through for
	// every query Answer does not answer. Unset, those queries' results
	// read as no rows over REST (their rows are a bqreadfake server's).
	Row func(i uint64) *bq.TableRow
	// Fail, if set before the first query, decides how each query job
	// inserted ends: a non-nil error makes it end DONE with that error
	// (status.errorResult and status.errors), as a job that fails while
	// running does; jobs.insert still succeeds, and a later insert of its
	// id still answers 409. getQueryResults on a failed job answers the
	// error, with HTTP 400 for a job's failure reason (jobInternalError,
	// invalidQuery, ...) and 500 for backendError and internalError.
	Fail func(job *bq.Job) *bq.ErrorProto
	// RunningPolls, if set before the first query, is how many jobs.get
	// calls each query job answers RUNNING to (jobs.insert too, and
	// getQueryResults with jobComplete false) before it is DONE, as a job
	// that takes a while.
	RunningPolls int
	// DryRunBytes is the totalBytesProcessed a dry run reports.
	DryRunBytes int64
	// Location, if set before the first query, is the location of every
	// dataset the double serves (datasets.get, tables.get) and of its jobs;
	// empty is "US". As BigQuery does, jobs.get and getQueryResults
	// without a location find a job only in the US and EU multi-regions,
	// and a location other than the job's finds none (404 notFound).
	Location string
	// DryRunSchema, if set, is the result schema a dry run of sql reports
	// (statistics.query.schema); nil, or unset, reports none, as the goccy
	// emulator v0.6.6 does. A dry run creates no job.
	DryRunSchema func(sql string) *bq.TableSchema

	mu          sync.Mutex
	jobs        map[string]*bq.Job
	inserted    []*bq.Job // every query job created, in order
	created     int
	dryRuns     int
	datasetGets int
	polls       map[string]int
	patches     []*bq.Table
	reads       []ResultRead
}

// MaxReplyBytes is the most bytes of rows one getQueryResults reply
// carries, whatever maxResults asks: BigQuery limits responses to 10 MB.
const MaxReplyBytes = 10 << 20

// ResultRead is one getQueryResults call on a complete job: the page it
// asked for and the rows it got.
type ResultRead struct {
	Job        string
	MaxResults int64 // -1: not set (no row limit, only MaxReplyBytes)
	StartIndex uint64
	PageToken  string // as asked
	Rows       int    // rows returned
	NextToken  string // the reply's pageToken; empty at the end
}

// Start serves on a free 127.0.0.1 port. Every query job's result is the
// table dst, of rows rows with the given schema.
func Start(dst *bq.TableReference, rows uint64, schema *bq.TableSchema) (*Server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bqjobsfake: listen: %w", err)
	}
	s := &Server{dst: dst, rows: rows, schema: schema, lis: lis, jobs: map[string]*bq.Job{}}
	s.srv = &http.Server{Handler: s}
	go s.srv.Serve(lis) //nolint:errcheck // ends at Close
	return s, nil
}

// URL is the REST endpoint (bigquery.endpoint).
func (s *Server) URL() string { return "http://" + s.lis.Addr().String() }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Created returns how many query jobs were created: each runs, and bills,
// the query.
func (s *Server) Created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Inserted returns the query jobs created so far, in order, as inserted
// (destination table, write disposition).
func (s *Server) Inserted() []*bq.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*bq.Job(nil), s.inserted...)
}

// DryRuns returns how many dry runs were asked for.
func (s *Server) DryRuns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dryRuns
}

// DatasetGets returns how many datasets.get calls were answered.
func (s *Server) DatasetGets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.datasetGets
}

// Patches returns the tables.patch bodies received so far.
func (s *Server) Patches() []*bq.Table {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*bq.Table(nil), s.patches...)
}

// ResultReads returns every getQueryResults call on a complete job, in
// order.
func (s *Server) ResultReads() []ResultRead {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ResultRead(nil), s.reads...)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, rest, _ := strings.Cut(r.URL.Path, "/projects/")
	parts := strings.Split(rest, "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 2 && parts[1] == "jobs":
		var job bq.Job
		if err := json.NewDecoder(r.Body).Decode(&job); err != nil || job.JobReference == nil || job.Configuration == nil || job.Configuration.Query == nil {
			fail(w, http.StatusBadRequest, "invalid", fmt.Sprintf("bqjobsfake serves query jobs with a job reference only (%v)", err))
			return
		}
		s.insert(w, &job)
	case r.Method == http.MethodGet && len(parts) == 3 && parts[1] == "queries":
		if j := s.job(parts[2]); j != nil && s.findable(r.URL.Query().Get("location")) {
			if s.stillRunning(parts[2]) {
				reply(w, &bq.GetQueryResultsResponse{JobComplete: false, JobReference: j.JobReference})
				return
			}
			if e := j.Status.ErrorResult; e != nil {
				code := http.StatusBadRequest
				if e.Reason == "backendError" || e.Reason == "internalError" {
					code = http.StatusInternalServerError
				}
				fail(w, code, e.Reason, e.Message)
				return
			}
			res := &bq.GetQueryResultsResponse{JobComplete: true, JobReference: j.JobReference, TotalRows: s.rows, Schema: s.schema}
			row := s.Row
			if s.Answer != nil {
				if schema, rows, ok := s.Answer(j.Configuration.Query.Query); ok {
					res.TotalRows, res.Schema, row = uint64(len(rows)), schema, func(i uint64) *bq.TableRow { return rows[i] }
				}
			}
			n := res.TotalRows
			if row == nil {
				n = 0 // the rows are bqreadfake's; totalRows says how many
			}
			s.page(w, parts[2], r.URL.Query(), res, n, row)
			return
		}
		fail(w, http.StatusNotFound, "notFound", "Not found: Job "+parts[2])
	case r.Method == http.MethodGet && len(parts) == 3 && parts[1] == "jobs":
		if j := s.job(parts[2]); j != nil && s.findable(r.URL.Query().Get("location")) {
			if s.poll(parts[2]) {
				reply(w, running(j))
				return
			}
			reply(w, j)
			return
		}
		fail(w, http.StatusNotFound, "notFound", "Not found: Job "+parts[2])
	case r.Method == http.MethodGet && len(parts) == 3 && parts[1] == "datasets":
		s.mu.Lock()
		s.datasetGets++
		s.mu.Unlock()
		reply(w, &bq.Dataset{DatasetReference: &bq.DatasetReference{ProjectId: parts[0], DatasetId: parts[2]}, Location: s.location()})
	case r.Method == http.MethodGet && len(parts) == 5 && parts[1] == "datasets" && parts[3] == "tables":
		reply(w, &bq.Table{TableReference: s.dst, NumRows: s.rows, Schema: s.schema, Location: s.location()})
	case r.Method == http.MethodPatch && len(parts) == 5 && parts[1] == "datasets" && parts[3] == "tables":
		var t bq.Table
		if err := json.NewDecoder(r.Body).Decode(&t); err != nil {
			fail(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
		t.TableReference = &bq.TableReference{ProjectId: parts[0], DatasetId: parts[2], TableId: parts[4]}
		s.mu.Lock()
		s.patches = append(s.patches, &t)
		s.mu.Unlock()
		reply(w, &bq.Table{TableReference: t.TableReference, ExpirationTime: t.ExpirationTime, NumRows: s.rows, Schema: s.schema})
	default:
		fail(w, http.StatusNotFound, "notFound", "bqjobsfake does not serve "+r.Method+" "+r.URL.Path)
	}
}

// page replies to a getQueryResults call with the page of the n rows
// (row i is row(i)) that q asks for: from pageToken, else from
// startIndex, at most maxResults rows and MaxReplyBytes bytes of them.
// res.TotalRows stays the whole result's, as BigQuery reports it.
func (s *Server) page(w http.ResponseWriter, job string, q url.Values, res *bq.GetQueryResultsResponse, n uint64, row func(uint64) *bq.TableRow) {
	read := ResultRead{Job: job, MaxResults: -1, PageToken: q.Get("pageToken")}
	var err error
	if v := q.Get("maxResults"); v != "" {
		if read.MaxResults, err = strconv.ParseInt(v, 10, 64); err != nil || read.MaxResults < 0 {
			fail(w, http.StatusBadRequest, "invalid", "Invalid value for maxResults: "+v)
			return
		}
	}
	if v := q.Get("startIndex"); v != "" {
		if read.StartIndex, err = strconv.ParseUint(v, 10, 64); err != nil {
			fail(w, http.StatusBadRequest, "invalid", "Invalid value for startIndex: "+v)
			return
		}
	}
	start := read.StartIndex
	if read.PageToken != "" {
		// Tokens are opaque to the client; the double's name the next row.
		next, ok := strings.CutPrefix(read.PageToken, tokenPrefix)
		if start, err = strconv.ParseUint(next, 10, 64); !ok || err != nil || start > n {
			fail(w, http.StatusBadRequest, "invalid", "Invalid page token: "+read.PageToken)
			return
		}
	}
	end := n
	if read.MaxResults >= 0 && start+uint64(read.MaxResults) < end {
		end = start + uint64(read.MaxResults)
	}
	var rows bytes.Buffer
	i := start
	for ; i < end; i++ {
		before := rows.Len()
		if i > start {
			rows.WriteByte(',')
		}
		appendRow(&rows, row(i))
		if rows.Len() > MaxReplyBytes && i > start {
			rows.Truncate(before) // the reply is full: this row starts the next page
			break
		}
	}
	if i < n {
		res.PageToken = tokenPrefix + strconv.FormatUint(i, 10)
	}
	read.Rows, read.NextToken = int(i-start), res.PageToken
	s.mu.Lock()
	s.reads = append(s.reads, read)
	s.mu.Unlock()
	head, err := json.Marshal(res)
	if err != nil {
		fail(w, http.StatusInternalServerError, "internalError", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if read.Rows == 0 {
		w.Write(head) //nolint:errcheck // as reply
		return
	}
	w.Write(head[:len(head)-1])  //nolint:errcheck // as reply
	w.Write([]byte(`,"rows":[`)) //nolint:errcheck // as reply
	w.Write(rows.Bytes())        //nolint:errcheck // as reply
	w.Write([]byte("]}\n"))      //nolint:errcheck // as reply
}

// tokenPrefix starts the double's page tokens.
const tokenPrefix = "bqjobsfake-row-"

// appendRow appends r in BigQuery's JSON form, {"f":[{"v":...},...]}:
// strings (every scalar BigQuery returns) and NULLs directly, anything
// else (records, arrays) through encoding/json.
func appendRow(b *bytes.Buffer, r *bq.TableRow) {
	b.WriteString(`{"f":[`)
	if r != nil {
		for k, c := range r.F {
			if k > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"v":`)
			var v any
			if c != nil {
				v = c.V
			}
			switch v := v.(type) {
			case nil:
				b.WriteString("null")
			case string:
				if plain(v) {
					b.WriteByte('"')
					b.WriteString(v)
					b.WriteByte('"')
					break
				}
				j, _ := json.Marshal(v) // a string always marshals
				b.Write(j)
			default:
				j, err := json.Marshal(v)
				if err != nil {
					j = []byte("null")
				}
				b.Write(j)
			}
			b.WriteByte('}')
		}
	}
	b.WriteString("]}")
}

// plain reports whether v is a JSON string as it stands between quotes.
func plain(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// location is the location of the double's datasets and jobs.
func (s *Server) location() string {
	if s.Location == "" {
		return "US"
	}
	return s.Location
}

// findable reports whether a job in the double's location is found by a
// request that names location loc.
func (s *Server) findable(loc string) bool {
	if loc == "" {
		return strings.EqualFold(s.location(), "US") || strings.EqualFold(s.location(), "EU")
	}
	return strings.EqualFold(loc, s.location())
}

func (s *Server) insert(w http.ResponseWriter, job *bq.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if loc := job.JobReference.Location; loc != "" && !strings.EqualFold(loc, s.location()) {
		fail(w, http.StatusNotFound, "notFound", fmt.Sprintf("Not found: Dataset %s:d was not found in location %s", job.JobReference.ProjectId, loc))
		return
	}
	job.JobReference.Location = s.location()
	if job.Configuration.DryRun {
		job.Status = &bq.JobStatus{State: "DONE"}
		job.Statistics = &bq.JobStatistics{TotalBytesProcessed: s.DryRunBytes, Query: &bq.JobStatistics2{TotalBytesProcessed: s.DryRunBytes}}
		if s.DryRunSchema != nil {
			job.Statistics.Query.Schema = s.DryRunSchema(job.Configuration.Query.Query)
		}
		s.dryRuns++
		reply(w, job)
		return
	}
	id := job.JobReference.JobId
	if _, taken := s.jobs[id]; taken {
		fail(w, http.StatusConflict, "duplicate", fmt.Sprintf("Already Exists: Job %s:%s.%s", job.JobReference.ProjectId, s.location(), id))
		return
	}
	job.Status = &bq.JobStatus{State: "DONE"}
	if s.Fail != nil {
		if e := s.Fail(job); e != nil {
			job.Status.ErrorResult, job.Status.Errors = e, []*bq.ErrorProto{e}
		}
	}
	if job.Configuration.Query.DestinationTable == nil {
		job.Configuration.Query.DestinationTable = s.dst // the anonymous result table
	}
	s.jobs[id] = job
	s.inserted = append(s.inserted, job)
	s.created++
	if s.RunningPolls > 0 {
		reply(w, running(job))
		return
	}
	reply(w, job)
}

// poll counts a jobs.get of job id and reports whether the job still
// runs (RunningPolls).
func (s *Server) poll(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.polls == nil {
		s.polls = map[string]int{}
	}
	if s.polls[id] >= s.RunningPolls {
		return false
	}
	s.polls[id]++
	return true
}

// stillRunning reports whether job id has been polled fewer than
// RunningPolls times.
func (s *Server) stillRunning(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls[id] < s.RunningPolls
}

// running is j as jobs.get shows it while it runs.
func running(j *bq.Job) *bq.Job {
	c := *j
	c.Status = &bq.JobStatus{State: "RUNNING"}
	return &c
}

func (s *Server) job(id string) *bq.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[id]
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v) //nolint:errcheck // the client sees a short body
}

func fail(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{ //nolint:errcheck // as reply
		"code": code, "message": msg, "errors": []map[string]string{{"reason": reason, "message": msg}},
	}})
}
