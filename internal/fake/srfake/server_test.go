package srfake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill/backfilltest"
)

// valueSchema is ksqlDB's value schema of the stream.
var valueSchema = backfilltest.KsqlValueSchema

type reply struct {
	status int
	ctype  string
	body   string
}

func call(t *testing.T, s *Server, method, path, body string) reply {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), strings.TrimSpace(string(b))}
}

func expect(t *testing.T, got reply, status int, body string) {
	t.Helper()
	if got.status != status || got.body != body {
		t.Errorf("got %d %s, want %d %s", got.status, got.body, status, body)
	}
	if got.ctype != contentType {
		t.Errorf("Content-Type = %q", got.ctype)
	}
}

func mustRegister(t *testing.T, s *Server, subject, schema string) int {
	t.Helper()
	id, err := s.Register(subject, schema)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRegisterIDsAndVersions(t *testing.T) {
	s := New()
	defer s.Close()
	if id := mustRegister(t, s, "T-key", `"long"`); id != 1 {
		t.Fatalf("first id = %d, want 1", id)
	}
	if id := mustRegister(t, s, "T-key", ` "long" `); id != 1 {
		t.Errorf("same schema (whitespace differs) got id %d, want 1", id)
	}
	if id := mustRegister(t, s, "U-key", `"long"`); id != 1 {
		t.Errorf("same schema under another subject got id %d, want the global id 1", id)
	}
	if id := mustRegister(t, s, "T-key", `"int"`); id != 2 {
		t.Errorf("new schema got id %d, want 2", id)
	}
	if _, err := s.Register("T-key", `{"type":"nope"}`); err == nil {
		t.Error("invalid Avro was registered")
	}
	expect(t, call(t, s, "GET", "/subjects/T-key/versions", ""), 200, `[1,2]`)
	expect(t, call(t, s, "GET", "/subjects/U-key/versions", ""), 200, `[1]`)
	expect(t, call(t, s, "GET", "/subjects", ""), 200, `["T-key","U-key"]`)
	expect(t, call(t, s, "GET", "/schemas/ids/1/versions", ""), 200, `[{"subject":"T-key","version":1},{"subject":"U-key","version":1}]`)
	if got, ok := s.SchemaByID(2); !ok || got != `"int"` {
		t.Errorf("SchemaByID(2) = %q, %v", got, ok)
	}
}

func TestEndpointsWithDottedSubject(t *testing.T) {
	s := New()
	defer s.Close()
	subj := "STREAM.ORDER.INSERT-value"
	body, _ := json.Marshal(map[string]string{"schema": valueSchema})
	expect(t, call(t, s, "POST", "/subjects/"+subj+"/versions", string(body)), 200, `{"id":1}`)
	expect(t, call(t, s, "POST", "/subjects/"+url.PathEscape(subj)+"/versions", string(body)), 200, `{"id":1}`)

	want := `{"subject":"STREAM.ORDER.INSERT-value","version":1,"id":1,"schema":` + string(mustJSON(t, valueSchema)) + `}`
	expect(t, call(t, s, "GET", "/subjects/"+subj+"/versions/latest", ""), 200, want)
	expect(t, call(t, s, "GET", "/subjects/"+subj+"/versions/1", ""), 200, want)
	expect(t, call(t, s, "POST", "/subjects/"+subj, string(body)), 200, want)
	expect(t, call(t, s, "GET", "/schemas/ids/1", ""), 200, `{"schema":`+string(mustJSON(t, valueSchema))+`}`)

	expect(t, call(t, s, "GET", "/subjects/NOPE-value/versions/latest", ""), 404, `{"error_code":40401,"message":"Subject 'NOPE-value' not found."}`)
	expect(t, call(t, s, "GET", "/subjects/"+subj+"/versions/7", ""), 404, `{"error_code":40402,"message":"Version 7 not found."}`)
	expect(t, call(t, s, "GET", "/schemas/ids/9", ""), 404, `{"error_code":40403,"message":"Schema 9 not found"}`)
	expect(t, call(t, s, "POST", "/subjects/"+subj, `{"schema":"\"string\""}`), 404, `{"error_code":40403,"message":"Schema not found"}`)
	expect(t, call(t, s, "GET", "/subjects/"+subj+"/versions/0", ""), 422,
		`{"error_code":42202,"message":"The specified version '0' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""}`)
	if r := call(t, s, "POST", "/subjects/X-value/versions", `{"schema":"{\"type\":\"record\"}"}`); r.status != 422 || !strings.Contains(r.body, `"error_code":42201`) {
		t.Errorf("invalid schema: got %d %s", r.status, r.body)
	}
	expect(t, call(t, s, "PUT", "/subjects", ""), 405, `{"error_code":405,"message":"HTTP 405 Method Not Allowed"}`)
}

func mustJSON(t *testing.T, v string) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeleteSubject(t *testing.T) {
	s := New()
	defer s.Close()
	mustRegister(t, s, "T-value", valueSchema)
	expect(t, call(t, s, "DELETE", "/subjects/T-value?permanent=true", ""), 404, `{"error_code":40405,"message":"Subject 'T-value' was not deleted first before being permanently deleted"}`)
	expect(t, call(t, s, "DELETE", "/subjects/T-value", ""), 200, `[1]`)
	expect(t, call(t, s, "GET", "/subjects/T-value/versions", ""), 404, `{"error_code":40401,"message":"Subject 'T-value' not found."}`)
	expect(t, call(t, s, "DELETE", "/subjects/T-value", ""), 404, `{"error_code":40404,"message":"Subject 'T-value' was soft deleted.Set permanent=true to delete permanently"}`)
	expect(t, call(t, s, "GET", "/subjects", ""), 200, `[]`)
	// Re-registering after a soft delete keeps the id and takes the next version.
	if id := mustRegister(t, s, "T-value", valueSchema); id != 1 {
		t.Errorf("re-registered id = %d, want 1", id)
	}
	expect(t, call(t, s, "GET", "/subjects/T-value/versions", ""), 200, `[2]`)
	expect(t, call(t, s, "DELETE", "/subjects/T-value", ""), 200, `[2]`)
	expect(t, call(t, s, "DELETE", "/subjects/T-value?permanent=true", ""), 200, `[1,2]`)
	expect(t, call(t, s, "DELETE", "/subjects/T-value", ""), 404, `{"error_code":40401,"message":"Subject 'T-value' not found."}`)
	if _, ok := s.SchemaByID(1); !ok {
		t.Error("id 1 no longer resolves after deletion")
	}
}

func TestFaultInjection(t *testing.T) {
	s := New()
	defer s.Close()
	mustRegister(t, s, "T-key", `"long"`)

	s.FailNext(2, 500)
	for range 2 {
		expect(t, call(t, s, "GET", "/subjects", ""), 500, `{"error_code":50001,"message":"Error in the backend data store"}`)
	}
	expect(t, call(t, s, "GET", "/subjects", ""), 200, `["T-key"]`)

	s.RequireBasicAuth("alice", "s3cret")
	expect(t, call(t, s, "GET", "/subjects", ""), 401, `{"error_code":401,"message":"Unauthorized"}`)
	req, _ := http.NewRequest("GET", s.URL()+"/subjects", nil)
	req.SetBasicAuth("alice", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("with credentials: status %d", resp.StatusCode)
	}

	s.SetDelay(150 * time.Millisecond)
	start := time.Now()
	call(t, s, "GET", "/subjects", "")
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("delayed request answered after %v", d)
	}
	if n := s.Requests(); n != 6 {
		t.Errorf("Requests() = %d, want 6", n)
	}
}

func TestCloseEndsDelayedRequests(t *testing.T) {
	s := New()
	s.SetDelay(time.Minute)
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(s.URL() + "/subjects")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for s.Requests() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a delayed request")
	}
}

// Schema Registry compares parsed Avro, not text: "long" and
// {"type":"long"} are one schema; a record without connect.name is another.
func TestSchemasCompareAsParsedAvro(t *testing.T) {
	s := New()
	defer s.Close()
	a, err := s.Register("T-key", `"long"`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Register("T-key", `{ "type" : "long" }`)
	if err != nil || b != a {
		t.Fatalf(`{"type":"long"} got id %d, %v; want %d, the id of "long"`, b, err, a)
	}
	expect(t, call(t, s, "POST", "/subjects/T-key", `{"schema":"{\"type\":\"long\"}"}`), 200, `{"subject":"T-key","version":1,"id":1,"schema":"\"long\""}`)
	withName, _ := s.Register("T-value", valueSchema)
	without, _ := s.Register("T-value", strings.Replace(valueSchema, `,"connect.name":"io.confluent.ksql.avro_schemas.KsqlDataSourceSchema"`, "", 1))
	if withName == without {
		t.Errorf("a value schema without connect.name got the same id %d", without)
	}
	if !s.SubjectHolds("T-value", without) || s.SubjectHolds("T-key", without) {
		t.Errorf("SubjectHolds disagrees with the registrations")
	}
}
