package schemaregistry

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordermin/ordermin-backfill/backfill"
)

// These tests show the client following the retry policy it shares with
// the ksqlDB client (internal/httpc), against a bare httptest
// server.

const policySecret = "s3cret:p@ss/word"

// policyRegistry serves the latest version of any subject (a "string"
// schema, which needs no lookup of ksqlDB's key schema), failing the first
// len(fail) requests with those statuses; a failure's body echoes the
// password, as a careless proxy might.
func policyRegistry(t *testing.T, retryAfter string, fail ...int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		if i < len(fail) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(fail[i])
			_ = json.NewEncoder(w).Encode(map[string]any{"error_code": fail[i] * 100, "message": "refused backfill:" + policySecret})
			return
		}
		subject, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/subjects/"), "/versions/latest")
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		id := map[bool]int{true: 1, false: 2}[strings.HasSuffix(subject, "-key")]
		_ = json.NewEncoder(w).Encode(map[string]any{"subject": subject, "version": 1, "id": id, "schema": `"string"`})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// policyFetch fetches the schemas of topic "T" with the password set.
// It does not use the helpers of client_test.go, which need srfake.
func policyFetch(t *testing.T, url string, retries int) (backfill.Schemas, error) {
	t.Helper()
	c, err := New(Config{URL: url, Username: "backfill", Password: policySecret, Retries: retries, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c.Fetch(t.Context(), "T")
}

// policyWant checks err's kind and that it mentions each of contains.
func policyWant(t *testing.T, err error, k backfill.Kind, contains ...string) {
	t.Helper()
	if backfill.KindOf(err) != k {
		t.Fatalf("kind %s, want %s: %v", backfill.KindOf(err), k, err)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// A 503 is retried, after the server's Retry-After rather than the
// schedule's first 100–200ms.
func TestSharedPolicyRetries503ThenSucceeds(t *testing.T) {
	t.Parallel()
	srv, n := policyRegistry(t, "1", http.StatusServiceUnavailable)
	start := time.Now()
	got, err := policyFetch(t, srv.URL, 2)
	if err != nil || got.Key.ID != 1 || got.Value.ID != 2 || n.Load() != 3 {
		t.Fatalf("Fetch = %+v, %v after %d requests; want the key on the second, then the value", got, err, n.Load())
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v; the server asked for Retry-After: 1", d)
	}
}

// retries: 0 is one attempt; the exhausted 503 is unavailability, without
// the password the answer echoed.
func TestSharedPolicyRetriesZeroIsOneAttempt(t *testing.T) {
	t.Parallel()
	srv, n := policyRegistry(t, "", http.StatusServiceUnavailable)
	_, err := policyFetch(t, srv.URL, 0)
	policyWant(t, err, backfill.KindUnavailable, "1 time(s)", "HTTP 503")
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
	if strings.Contains(err.Error(), policySecret) {
		t.Errorf("the error holds the password: %v", err)
	}
}

// A 401 is not retried, and the password the answer echoed is redacted.
func TestSharedPolicyDoesNotRetry401AndRedacts(t *testing.T) {
	t.Parallel()
	srv, n := policyRegistry(t, "", http.StatusUnauthorized, http.StatusUnauthorized)
	_, err := policyFetch(t, srv.URL, 3)
	policyWant(t, err, backfill.KindConfig, "401", "[redacted]")
	if n.Load() != 1 {
		t.Errorf("%d requests, want 1", n.Load())
	}
	if strings.Contains(err.Error(), policySecret) {
		t.Errorf("the error holds the password: %v", err)
	}
}
