package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	bq "google.golang.org/api/bigquery/v2"
)

// jobIDs makes jobs.insert idempotent by job id, as BigQuery is: a second
// insert of an id already taken is answered 409 "Already Exists" with
// reason "duplicate", whatever the state of that job (BigQuery's
// jobs.insert; ../shared/reference/bigquery-read.md, "Jobs, locations and
// errors in production"). Emulator v0.6.6 answers 400 "already created"
// instead (server/handler.go, jobsInsertHandler), which a client cannot
// tell from a bad query. A repeat that arrives while the first insert is
// still running waits for it, so that the job it is told to attach to
// exists when it asks jobs.get. Inserts run one at a time: the emulator
// creates each job's result table in one SQLite database, and concurrent
// creations fail with "database table is locked", which BigQuery never
// answers.
func jobIDs(next http.Handler) http.Handler {
	var mu, insert sync.Mutex
	taken := map[string]chan struct{}{} // job id -> closed once its first insert was answered
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/jobs") {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var job bq.Job
		if json.Unmarshal(body, &job) != nil || job.JobReference == nil || job.JobReference.JobId == "" {
			insert.Lock()
			defer insert.Unlock()
			next.ServeHTTP(w, r)
			return
		}
		ref := job.JobReference
		mu.Lock()
		done, repeat := taken[ref.JobId]
		if !repeat {
			done = make(chan struct{})
			taken[ref.JobId] = done
		}
		mu.Unlock()
		if !repeat {
			defer close(done)
			insert.Lock()
			defer insert.Unlock()
			next.ServeHTTP(w, r)
			return
		}
		select {
		case <-done:
		case <-r.Context().Done():
			return
		}
		loc := ref.Location
		if loc == "" {
			loc = "US"
		}
		msg := fmt.Sprintf("Already Exists: Job %s:%s.%s", ref.ProjectId, loc, ref.JobId)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"code": http.StatusConflict, "message": msg, "status": "ALREADY_EXISTS",
			"errors": []map[string]any{{"message": msg, "domain": "global", "reason": "duplicate"}},
		}})
	})
}
