package stack

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	bq "google.golang.org/api/bigquery/v2"
)

// truncateOnWrite makes the emulator honour a query job's
// WRITE_TRUNCATE, as BigQuery does: it deletes the destination table
// before passing the jobs.insert on. Emulator v0.6.6 ignores the write
// disposition and appends the result to an existing destination table
// (server/handler.go, jobsInsertHandler.Handle: AddTableData), so a
// second run of the job would read the first run's rows again.
func truncateOnWrite(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/jobs") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var job bq.Job
			if json.Unmarshal(body, &job) == nil && job.Configuration != nil && job.Configuration.Query != nil {
				q := job.Configuration.Query
				if i := strings.Index(r.URL.Path, "/projects/"); i >= 0 && q.DestinationTable != nil && q.WriteDisposition == "WRITE_TRUNCATE" {
					t, prefix := q.DestinationTable, r.URL.Path[:i]
					del := httptest.NewRequestWithContext(r.Context(), http.MethodDelete,
						prefix+"/projects/"+t.ProjectId+"/datasets/"+t.DatasetId+"/tables/"+t.TableId, nil)
					next.ServeHTTP(httptest.NewRecorder(), del) // a missing table is fine
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
